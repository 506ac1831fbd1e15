"""The two front doors answer: /health without auth, the API with a token."""


def test_health_answers_without_auth(client, db):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_unknown_api_path_is_404_in_the_envelope(anon, db):
    response = anon.get("/api/research/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not found."}
