"""A shipping consumer: each order from Kafka's topic `shipments` is written to PostgreSQL. kafka-python's
consumer fetches on the thread that polls, so the fetch that brought an order and the INSERT it causes are on
one thread; pg8000 (pure Python) sends the INSERT in the extended protocol."""
import sys

import pg8000.native
from kafka import KafkaConsumer

kafka_port, pg_port = int(sys.argv[1]), int(sys.argv[2])
db = pg8000.native.Connection("postgres", host="127.0.0.1", port=pg_port)
db.run("CREATE TABLE IF NOT EXISTS shipments (n int, body text)")
consumer = KafkaConsumer(
    "shipments",
    bootstrap_servers=f"127.0.0.1:{kafka_port}",
    group_id="shipping",
    auto_offset_reset="earliest",
)
# Ready once the group gave this member its partition: orders published after that are all fetched.
while not consumer.assignment():
    consumer.poll(timeout_ms=100)
print("ready", flush=True)
n = 0
while True:
    for records in consumer.poll(timeout_ms=1000).values():
        for record in records:
            n += 1
            db.run("INSERT INTO shipments VALUES (:n, :body)", n=n, body=record.value.decode())
