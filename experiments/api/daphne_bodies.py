"""Request bodies under daphne are Django's to read, not Twisted's.

daphne hands each request's raw body to the application and never looks at the form
arguments that Twisted's ``Request`` parses out of ``multipart/form-data`` and
URL-encoded POST bodies on the way in. That parse is wasted work, and on a malformed
multipart body Twisted answers on its own with a bare ``400 Bad Request`` (no JSON, no
error envelope) before the application sees the request. Twisted lets a request skip it
(``parsePOSTFormSubmission``); daphne does not pass the option, so it is set here on each
request daphne creates. Django then parses what the view asks for and answers a bad
body with the API's own 400.
"""

import sys


def leave_bodies_to_django() -> None:
    if "daphne.server" not in sys.modules:
        return  # another server: nothing of Twisted's in the way
    from daphne.http_protocol import WebRequest

    if getattr(WebRequest, "_bodies_left_to_django", False):
        return
    original_init = WebRequest.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    WebRequest.__init__ = __init__
    WebRequest._bodies_left_to_django = True
