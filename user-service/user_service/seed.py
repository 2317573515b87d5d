"""Demo data of user-service (README: demo accounts), idempotent: deterministic ids, and starting credits through one ledger
row per user (reference `seed:{user_id}`), so running it twice changes nothing."""
from trcommon import demo

from .bootstrap import bootstrap
from .service_layer import services
from .settings import UserSettings


def seed_demo(settings: UserSettings) -> None:
    c = bootstrap(settings)
    try:
        for email, role, flagged, credits, phone in demo.USERS:
            user_id = demo.user_id(email)
            with c.uow() as uow:
                if uow.users.get(user_id) is None:
                    uow.users.add_if_absent(user_id, email, c.passwords.hash(demo.PASSWORD), phone, role, flagged)
                    uow.commit()
            if credits:
                services.credit(c, user_id, credits, f"seed:{user_id}", "demo starting credits")
    finally:
        c.engine.dispose()
