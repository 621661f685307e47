"""An order service: POST /orders publishes the order to RabbitMQ (queue `orders`) and to Kafka (topic
`shipments`) with the request's traceparent in the message headers, as a service that propagates context
does. Python's http.server and pika, one thread: the RabbitMQ publish is made by the thread serving the
request. kafka-python sends from a thread of its own (as every Kafka producer does); the request waits for
the broker's acknowledgement before it answers."""
import http.server
import sys

import pika
from kafka import KafkaProducer

http_port, amqp_port, kafka_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
channel = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port)).channel()
channel.queue_declare("orders")
producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{kafka_port}", linger_ms=0)


class Orders(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {"traceparent": self.headers["traceparent"]} if self.headers["traceparent"] else {}
        channel.basic_publish("", "orders", body, pika.BasicProperties(headers=headers))
        producer.send("shipments", body, headers=[(k, v.encode()) for k, v in headers.items()]).get(timeout=30)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", http_port), Orders)
print("ready", flush=True)
server.serve_forever()
