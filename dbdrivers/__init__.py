"""How every connection of ours uses a database driver, one module per driver: the settings each
connection gets, and which of the driver's errors mean "the database is unavailable" rather than
a bug in a statement.

The event store (`eventstore`) and the SQL layer (`sqldb`) are independent siblings; both open
connections to the same database, and a failure must mean the same to both (the same HTTP answer
whichever hit it). So what they share lives here, below both, and imports nothing of ours; so
does one read that many callers await, woken in the turn it ends (`shared`), which the log's
subscriptions and the application both use."""
