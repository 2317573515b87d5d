"""Cross-cutting code shared by every TicketRemaster service: settings, logging, errors, auth, database,
internal HTTP/gRPC clients and AMQP helpers. One way to do each of these things."""
