// Integration tests talk to real PostgreSQL and Redis on machines that may be shared and loaded:
// jest's 5 s default failed a 1.2 s test once under load. Timeouts catch hangs, not slowness.
jest.setTimeout(30_000);
