-- The inventory service's hold (inventory_service: services.reserve_seats → SeatRepository.hold) for one seat, for
-- pgbench: one call of the database function hold_seats (inventory-service migration 0007), in autocommit, as the
-- service makes it: the seat's row locked NOWAIT with the user's hold-cap lock, then the hold written if the seat
-- is free and on sale, the user's held seats stay within MAX_HOLDS_PER_USER's default of 8 and no other seat has
-- the hold id. Each client holds its own seats (ids computed from a number: bench/__main__.py's ceiling_seat_id),
-- so NOWAIT never fails; a hold lasts 1 s, so seats come free again during the run. HOLD_CAP_LOCK_NAMESPACE is
-- filled in by the bench.
\set n :client_id * :per_client + random(1, :per_client)
\set u random(1, 2000)
SELECT * FROM hold_seats(ARRAY[('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid],
                         ('00000000-0000-4000-9000-' || lpad(:u::text, 12, '0'))::uuid,
                         ('00000000-0000-4000-a000-' || lpad(:n::text, 12, '0'))::uuid, 1, 8, HOLD_CAP_LOCK_NAMESPACE);
