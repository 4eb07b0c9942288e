"""The studio's words: stream names, roles, event types and their payload codecs, and the
project document read into plain values. No I/O, no framework; imports only `crdt` and the
event store's event types."""
