"""The one domain error: an action that the current state does not allow.

Services raise it for every illegal transition; the API answers it with 409 ``conflict``
and the sockets with an ``error`` message of code ``conflict``.
"""


class ConflictError(Exception):
    code = "conflict"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail
