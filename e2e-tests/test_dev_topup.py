"""`make topup` (python -m trcommon.devtools topup) against the running system: a newly registered fan gets
credits through the signed public webhook, as a Stripe payment would give them."""
import subprocess
import sys

from e2e_support import STRIPE_WEBHOOK_SECRET, balance

from trcommon.services import ROOT


def _topup(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trcommon.devtools", "topup", "--api-url", stack.base_url,
         "--user-service-url", f"http://127.0.0.1:{stack.ports.user}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_the_dev_topup_credits_a_new_fan_through_the_signed_webhook(stack, api, fan):
    done = _topup(stack, "--email", fan.email.upper(), "--amount", "1000", "--webhook-secret", STRIPE_WEBHOOK_SECRET)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"topped up {fan.email} (user {fan.user_id}): +1000 credits, balance 1000"]
    assert balance(api, fan.token) == 1000

    again = _topup(stack, "--email", fan.email, "--amount", "250", "--webhook-secret", STRIPE_WEBHOOK_SECRET)
    assert again.returncode == 0, again.stderr
    assert balance(api, fan.token) == 1250          # every run is a new payment


def test_the_dev_topup_says_in_one_line_why_it_credited_nothing(stack, api, fan):
    unknown = _topup(stack, "--email", "nobody-here@example.com", "--amount", "100",
                     "--webhook-secret", STRIPE_WEBHOOK_SECRET)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: USER_NOT_FOUND"), unknown.stderr

    # The development default is not this system's secret: user-service refuses the signature.
    forged = _topup(stack, "--email", fan.email, "--amount", "100")
    assert forged.returncode == 1, forged.stdout
    assert forged.stderr.startswith("error: WEBHOOK_REFUSED: POST /webhooks/stripe answered 400"), forged.stderr
    assert len(forged.stderr.splitlines()) == 1
    assert balance(api, fan.token) == 0
