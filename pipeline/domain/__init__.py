"""Pure domain code: no Faust, Kafka or ClickHouse imports, unit-tested on its own."""
