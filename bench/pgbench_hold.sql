-- The inventory service's hold transaction (inventory_service: services.reserve_seat), for pgbench: lock the seat
-- NOWAIT, take the user's hold-cap lock, count their live holds, write the hold. Each client holds its own seats
-- (ids computed from a number: bench/__main__.py's ceiling_seat_id), so NOWAIT never fails; a hold lasts 1 s, so
-- seats come free again during the run. HOLD_CAP_LOCK_NAMESPACE is filled in by the bench.
\set n :client_id * :per_client + random(1, :per_client)
\set u random(1, 2000)
BEGIN;
SELECT seat_id, event_id, section, "row", number, price, status, hold_id, held_by_user_id, held_until, owner_user_id,
       ticket_version, checked_in_at, checked_in_hall_id, now()
  FROM seats WHERE seat_id = ('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid FOR UPDATE NOWAIT;
SELECT pg_advisory_xact_lock(HOLD_CAP_LOCK_NAMESPACE, hashtext('00000000-0000-4000-9000-' || lpad(:u::text, 12, '0')));
SELECT count(*) FROM seats
 WHERE held_by_user_id = ('00000000-0000-4000-9000-' || lpad(:u::text, 12, '0'))::uuid AND status = 'HELD'
   AND held_until > now();
UPDATE seats SET status = 'HELD', held_by_user_id = ('00000000-0000-4000-9000-' || lpad(:u::text, 12, '0'))::uuid,
       hold_id = gen_random_uuid(), held_until = now() + interval '1 second', updated_at = now()
 WHERE seat_id = ('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid
   AND (status = 'AVAILABLE' OR (status = 'HELD' AND held_until < now()));
END;
