"""An order service: POST /orders publishes the order to RabbitMQ (queue `orders`) with the request's
traceparent in the message headers, as a service that propagates context does. Python's http.server and
pika, one thread: the publish is made by the thread serving the request."""
import http.server
import sys

import pika

http_port, amqp_port = int(sys.argv[1]), int(sys.argv[2])
channel = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port)).channel()
channel.queue_declare("orders")


class Orders(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {"traceparent": self.headers["traceparent"]} if self.headers["traceparent"] else {}
        channel.basic_publish("", "orders", body, pika.BasicProperties(headers=headers))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", http_port), Orders)
print("ready", flush=True)
server.serve_forever()
