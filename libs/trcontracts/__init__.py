"""Typed contracts between TicketRemaster's services: one module per internal API (users, orders, events, and
inventory for the gRPC side), each imported by its server and by its clients. docs/internal-api.md is generated
from them (`make contracts-doc`)."""
