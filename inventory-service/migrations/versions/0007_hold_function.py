"""hold_seats(): a reservation's hold in one round trip (the seats' NOWAIT locks with the user's hold-cap lock, then
the conditional write), called in autocommit by SeatRepository.hold

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The function runs the two statements the service ran in its own transaction, in one call:
# 1. the seats' rows locked NOWAIT in ascending seat_id (55P03 at once if another transaction has one), kept as
#    they were; then the user's hold-cap lock (p_cap_lock_namespace, hashtext of the user id), which serialises
#    that user's reservations until the call ends;
# 2. the write, only when every seat asked for was found, all of one event, on sale and free (AVAILABLE, or HELD
#    by a hold whose held_until has passed) — the rule of inventory_service.domain.model.hold_seats, which the
#    service applies to the same rows and which a test holds equal — and when the user's seats in live holds plus
#    these stay within p_max_holds and no other seat has the hold id. A VOLATILE function takes a fresh snapshot
#    for each statement, so the count runs after the hold-cap lock was granted and sees every hold of that user
#    committed before. The count and the hold id's test are the same for every row: all seats are written or none.
# Every time is statement_timestamp(): the calling statement's, one value for the whole call.
# It returns the seats as they were when locked (in seat order), the database clock, and whether it wrote.
HOLD_SEATS = """
CREATE FUNCTION hold_seats(p_seat_ids uuid[], p_user_id uuid, p_hold_id uuid, p_hold_seconds integer,
                           p_max_holds integer, p_cap_lock_namespace integer)
RETURNS TABLE (seat_id uuid, event_id uuid, section text, "row" text, number integer, price bigint, status text,
               held_by_user_id uuid, hold_id uuid, held_until timestamptz, owner_user_id uuid, ticket_version integer,
               checked_in_at timestamptz, checked_in_hall_id uuid, on_sale boolean, db_now timestamptz,
               written boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    locked seats[];
    holdable boolean;
    wrote integer := 0;
BEGIN
    SELECT coalesce(array_agg(s ORDER BY s.seat_id), '{}') INTO locked
      FROM (SELECT * FROM seats WHERE seats.seat_id = ANY(p_seat_ids) ORDER BY seats.seat_id FOR UPDATE NOWAIT) AS s;
    IF cardinality(locked) > 0 THEN
        PERFORM pg_advisory_xact_lock(p_cap_lock_namespace, hashtext(p_user_id::text));
    END IF;
    SELECT cardinality(locked) = cardinality(p_seat_ids)
           AND count(DISTINCT l.event_id) = 1
           AND bool_and(l.on_sale AND (l.status = 'AVAILABLE' OR (l.status = 'HELD' AND
                        (l.held_until IS NULL OR l.held_until <= statement_timestamp()))))
      INTO holdable FROM unnest(locked) AS l;
    IF holdable THEN
        UPDATE seats SET status = 'HELD', held_by_user_id = p_user_id, hold_id = p_hold_id,
                         held_until = statement_timestamp() + make_interval(secs => p_hold_seconds),
                         updated_at = statement_timestamp()
         WHERE seats.seat_id = ANY(p_seat_ids)
           AND (SELECT count(*) FROM seats AS mine
                 WHERE mine.held_by_user_id = p_user_id AND mine.status = 'HELD'
                   AND mine.held_until > statement_timestamp()) + cardinality(p_seat_ids) <= p_max_holds
           AND NOT EXISTS (SELECT 1 FROM seats AS other
                            WHERE other.hold_id = p_hold_id AND NOT (other.seat_id = ANY(p_seat_ids)));
        GET DIAGNOSTICS wrote = ROW_COUNT;
    END IF;
    RETURN QUERY SELECT l.seat_id, l.event_id, l.section, l."row", l.number, l.price, l.status, l.held_by_user_id,
                        l.hold_id, l.held_until, l.owner_user_id, l.ticket_version, l.checked_in_at,
                        l.checked_in_hall_id, l.on_sale, statement_timestamp(), wrote > 0
                   FROM unnest(locked) AS l ORDER BY l.seat_id;
END
$$
"""


def upgrade() -> None:
    op.execute(HOLD_SEATS)


def downgrade() -> None:
    op.execute("DROP FUNCTION hold_seats(uuid[], uuid, uuid, integer, integer, integer)")
