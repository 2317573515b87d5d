"""HTTP entrypoint: serves the routes of trcontracts.users, translating them to service-layer calls."""
from __future__ import annotations

from flask import Flask, request

from trcommon.web import database_service_app, internal_blueprint, serve
from trcontracts import users

from ..bootstrap import Container, bootstrap
from ..domain.model import AdminAction, BalanceChange
from ..service_layer import services
from ..settings import UserSettings

# Webhook bodies and every other request here are small; refuse anything larger before reading it.
MAX_BODY_BYTES = 1024 * 1024


def _change(change: BalanceChange) -> users.BalanceChange:
    entry = change.entry
    return users.BalanceChange(entry_id=entry.entry_id, user_id=entry.user_id, amount=entry.amount,
                               balance=entry.balance_after, reference=entry.reference, account=entry.account,
                               applied=change.applied)


def _admin_action(action: AdminAction) -> users.AdminAction:
    return users.AdminAction.model_validate(action, from_attributes=True)


def create_app(settings: UserSettings | None = None, container: Container | None = None) -> Flask:
    app, settings, c = database_service_app(UserSettings, bootstrap, settings, container)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    api = internal_blueprint("users", __name__, settings)

    @serve(api, users.REGISTER)
    def register(body: users.RegisterBody):
        return users.UserId(user_id=services.register(c, body.email, body.password, body.phone))

    @serve(api, users.LOGIN)
    def login(body: users.LoginBody):
        return users.TokenPair.model_validate(services.login(c, body.email, body.password))

    @serve(api, users.REFRESH)
    def refresh(body: users.RefreshBody):
        return users.AccessToken.model_validate(services.refresh(c, body.refresh_token))

    @serve(api, users.USER_BY_EMAIL)
    def user_by_email(query: users.EmailQuery):
        return users.User.model_validate(services.get_user_by_email(c, query.email), from_attributes=True)

    @serve(api, users.GET_USER)
    def user(user_id: str):
        return users.User.model_validate(services.get_user(c, user_id), from_attributes=True)

    @serve(api, users.DEBIT)
    def debit(body: users.DebitBody):
        parties = None if body.otp_parties is None else {str(p.user_id): p.code for p in body.otp_parties}
        return _change(services.debit(c, str(body.user_id), body.amount, body.reference, body.reason,
                                      account=body.account, otp_purpose=body.otp_purpose, otp_code=body.otp_code,
                                      otp_parties=parties, not_after=body.not_after))

    @serve(api, users.CREDIT)
    def credit(body: users.CreditBody):
        return _change(services.credit(c, str(body.user_id), body.amount, body.reference, body.reason,
                                       body.account, str(body.actor_user_id) if body.actor_user_id else None))

    @serve(api, users.RELEASE_PENDING)
    def release_pending(body: users.ReleaseBody):
        return _change(services.release_pending(c, str(body.user_id), body.amount, body.reference, body.reason))

    @serve(api, users.LEDGER)
    def ledger(query: users.LedgerQuery):
        entries = services.ledger_entries(c, query.reference, str(query.user_id) if query.user_id else None,
                                          query.limit, query.offset)
        return users.LedgerEntries(entries=[users.LedgerEntry.model_validate(e, from_attributes=True)
                                            for e in entries])

    @serve(api, users.OTP_SEND)
    def otp_send(body: users.OtpSendBody):
        return users.OtpSent(sent=True, expires_at=services.send_otp(c, str(body.user_id), body.purpose))

    @serve(api, users.OTP_VERIFY)
    def otp_verify(body: users.OtpVerifyBody):
        services.verify_otp(c, str(body.user_id), body.purpose, body.code)
        return users.OtpVerified(verified=True)

    @serve(api, users.TOPUP)
    def topup(body: users.TopupBody):
        intent = services.create_topup(c, str(body.user_id), body.amount)
        return users.Topup(client_secret=intent.client_secret, payment_intent_id=intent.payment_intent_id,
                           amount=intent.amount)

    @serve(api, users.DEV_PAYMENT_INTENT)
    def dev_payment_intent(body: users.DevPaymentIntentBody):
        intent = services.record_development_intent(c, str(body.user_id), body.amount)
        return users.PaymentIntentRecord(payment_intent_id=intent.payment_intent_id, user_id=intent.user_id,
                                         amount=intent.amount, currency=intent.currency)

    @serve(api, users.STRIPE_WEBHOOK)
    def stripe_webhook():
        # The signature covers the exact bytes Stripe sent: read them raw, never re-serialised JSON.
        services.receive_stripe_webhook(c, request.get_data(), request.headers.get(users.STRIPE_SIGNATURE_HEADER))
        return users.Received(received=True)

    @serve(api, users.SET_FLAG)
    def set_flag(user_id: str, body: users.SetFlagBody):
        return users.User.model_validate(services.set_flag(c, user_id, body.flagged), from_attributes=True)

    @serve(api, users.RECORD_ADMIN_ACTION)
    def record_admin_action(body: users.AdminActionBody):
        action, created = services.record_admin_action(c, str(body.action_id), str(body.admin_id), body.action,
                                                       body.target_type, body.target_id, body.request, body.before)
        return _admin_action(action), (201 if created else 200)

    @serve(api, users.FINISH_ADMIN_ACTION)
    def finish_admin_action(action_id: str, body: users.FinishAdminActionBody):
        return _admin_action(services.finish_admin_action(c, action_id, str(body.outcome), body.after,
                                                          body.error_code))

    @serve(api, users.LIST_ADMIN_ACTIONS)
    def admin_actions(query: users.AdminActionQuery):
        found = services.admin_actions(c, str(query.admin_id) if query.admin_id else None, query.target_type,
                                       query.target_id, query.action, query.limit, query.offset)
        return users.AdminActions(actions=[_admin_action(a) for a in found])

    @serve(api, users.LIST_NOTIFICATIONS)
    def notifications(user_id: str, query: users.NotificationQuery):
        found = services.user_notifications(c, user_id, query.limit, query.offset)
        return users.NotificationRecords(notifications=[
            users.NotificationRecord.model_validate(n, from_attributes=True) for n in found])

    app.register_blueprint(api)
    return app
