"""Reading the dashboard in a test: explicit waits and the few selectors tests share."""

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20
# The tests/live.py template user who creates, and so owns, the test experiments.
OWNER = "operator"


def wait(web, condition, timeout: float = WAIT, message: str = ""):
    """Until ``condition`` holds; an element that the live page re-rendered while the
    condition read it is read again on the next poll."""
    return WebDriverWait(web, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition, message)


def wait_live(web, timeout: float = WAIT):
    wait(
        web,
        ec.presence_of_element_located((By.CSS_SELECTOR, '#connection[data-state="live"]')),
        timeout,
        "the page's socket never became live",
    )


def run_row(web, run_id: str):
    return web.find_element(By.CSS_SELECTOR, f'#runs-body tr[data-run-id="{run_id}"]')


def text_in(locator, text: str):
    """Expected condition: the element's text contains ``text`` (tolerates redraws)."""

    def check(web):
        try:
            return text in web.find_element(*locator).text
        except WebDriverException:
            return False

    return check


def log_seqs(web) -> list[int]:
    return web.execute_script(
        "return [...document.querySelectorAll('#event-log li[data-seq]')].map(li => Number(li.dataset.seq))"
    )
