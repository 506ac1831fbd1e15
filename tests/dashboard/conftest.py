"""Browser tests: a real daphne per test module (tests/live.py), headless Debian Chromium.

Users (password ``tests.live.PASSWORD``): ``operator`` creates the experiments, so owns
them; ``viewer`` is added as a viewer and ``carol`` as an operator where a test needs it;
``outsider`` is a member of nothing. Everything else is made through the REST API.

One Chromium serves the whole session; before each test its cookies, network
conditions and page are reset, which costs far less than a new browser.
"""

import contextlib
import itertools

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from tests import services
from tests.dashboard.harness import Agent, Client, add_users, chrome, quit_chrome
from tests.dashboard.pages import OWNER, wait_live
from tests.live import PASSWORD, live_database_template, shared_daphne_server  # noqa: F401

_names = itertools.count(1)


@pytest.fixture(scope="session")
def chromium():
    return services.require_chromium()


@pytest.fixture(scope="module")
def server(chromium, shared_daphne_server):  # noqa: F811
    return shared_daphne_server


@pytest.fixture(scope="module")
def carol(server):
    """A user beyond the template's, for the operator role."""
    add_users(server, "carol")
    return "carol"


@pytest.fixture(scope="module")
def owner_api(server):
    return Client(server, OWNER)


@pytest.fixture(scope="session")
def _chrome(chromium):
    holder = {"web": chrome(*chromium)}
    yield holder
    quit_chrome(holder["web"])


@pytest.fixture
def browser(_chrome, chromium, server, request):
    try:
        _chrome["web"].get("about:blank")
    except WebDriverException:  # the browser died in an earlier test: start another
        quit_chrome(_chrome["web"])
        _chrome["web"] = chrome(*chromium)
    web = _chrome["web"]
    web.execute_cdp_cmd("Network.enable", {})
    web.execute_cdp_cmd("Network.clearBrowserCookies", {})
    web.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    web.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    )
    web.get_log("browser")  # start each test with an empty console log
    yield web
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        _dump(web, server, request.node.name)
    with contextlib.suppress(WebDriverException):
        web.get("about:blank")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


def _dump(web, server, name: str) -> None:
    """What the page showed and logged, for a failing test's report."""
    try:
        print(f"--- {name}: {web.current_url}")
        for entry in web.get_log("browser")[-30:]:
            print(f"console {entry['level']}: {entry['message']}")
        print(web.find_element(By.TAG_NAME, "main").text[:3000])
    except WebDriverException as exc:
        print(f"(could not read the page: {exc.msg})")
    print(f"--- daphne log tail:\n{server.log()[-2000:]}")


@pytest.fixture
def login(server):
    def sign_in(web, username: str, path: str = "/"):
        web.get(f"{server.url}/accounts/login/?next={path}")
        web.find_element(By.ID, "id_username").send_keys(username)
        web.find_element(By.ID, "id_password").send_keys(PASSWORD)
        web.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        wait_live(web)
        return web

    return sign_in


@pytest.fixture
def experiment(server, owner_api):
    """Makes an experiment of the owner's (started unless told) and its agents' clients."""

    def make(agents=("first", "second"), start: bool = True, members: dict | None = None):
        body = owner_api.create_experiment(f"Experiment {next(_names)}", list(agents), "Made by a browser test.")
        for username, role in (members or {}).items():
            owner_api.add_member(body["id"], username, role)
        if start:
            owner_api.start(body["id"])
        return body, [Agent(server, run) for run in body["runs"]]

    return make
