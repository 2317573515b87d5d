-- The inventory service's hold transaction (inventory_service: services.reserve_seats) for one seat, for pgbench,
-- statement for statement: lock the seats NOWAIT (an array of seat ids, in ascending order) and then take the
-- user's hold-cap lock, in one statement (SeatRepository.lock_for_hold); then write the hold if the seats are on
-- sale and the user's held seats, counted in the same UPDATE, stay within the cap (SeatRepository.save_hold, with MAX_HOLDS_PER_USER's
-- default of 8) and no other seat has the hold id. The service checks in Python
-- between the two that the seat is free; the UPDATE's last condition stands in for that check. Each client holds
-- its own seats (ids computed from a number: bench/__main__.py's ceiling_seat_id), so NOWAIT never fails; a hold
-- lasts 1 s, so seats come free again during the run. HOLD_CAP_LOCK_NAMESPACE is filled in by the bench.
\set n :client_id * :per_client + random(1, :per_client)
\set u random(1, 2000)
BEGIN;
SELECT locked.*,
       pg_advisory_xact_lock(HOLD_CAP_LOCK_NAMESPACE, hashtext('00000000-0000-4000-9000-' || lpad(:u::text, 12, '0')))
  FROM (SELECT seat_id, event_id, section, "row", number, price, status, held_by_user_id, hold_id, held_until,
               owner_user_id, ticket_version, checked_in_at, checked_in_hall_id, on_sale,
               statement_timestamp() AS db_now
          FROM seats WHERE seat_id = ANY(ARRAY[('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid])
         ORDER BY seat_id FOR UPDATE NOWAIT)
       AS locked ORDER BY locked.seat_id;
UPDATE seats SET status = 'HELD', held_by_user_id = ('00000000-0000-4000-9000-' || lpad(:u::text, 12, '0'))::uuid,
       hold_id = ('00000000-0000-4000-a000-' || lpad(:n::text, 12, '0'))::uuid,
       held_until = statement_timestamp() + interval '1 second', owner_user_id = NULL,
       ticket_version = 1, checked_in_at = NULL, checked_in_hall_id = NULL, updated_at = statement_timestamp()
 WHERE seat_id = ANY(ARRAY[('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid])
   AND on_sale
   AND (SELECT count(*) FROM seats
         WHERE held_by_user_id = ('00000000-0000-4000-9000-' || lpad(:u::text, 12, '0'))::uuid AND status = 'HELD'
           AND held_until > statement_timestamp()) + 1 <= 8
   AND NOT EXISTS (SELECT * FROM seats AS other
                    WHERE other.hold_id = ('00000000-0000-4000-a000-' || lpad(:n::text, 12, '0'))::uuid
                      AND NOT (other.seat_id = ANY(ARRAY[('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid])))
   AND (status = 'AVAILABLE' OR (status = 'HELD' AND held_until < statement_timestamp()))
 RETURNING seat_id;
END;
