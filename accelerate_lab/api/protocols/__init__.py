"""Pure protocol adapters (no I/O): each module builds `HttpRequest`s for one wire format and parses
its responses and stream events. Backends in `accelerate_lab.api.backends` combine them with the
shared transport and resilience layer."""
