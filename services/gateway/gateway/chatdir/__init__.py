"""What the gateway remembers about chat groups beyond deliveries: which platform messages it has already
turned into events (message-level dedupe), the names people carry in each group (the names directory),
and @-mentions by name still waiting for their person."""
