"""A billing consumer: each order from RabbitMQ's queue `orders` is written to memcached, then acknowledged.
pika's blocking consumer: the delivery and the cache write are on one thread."""
import socket
import sys

import pika

amqp_port, cache_port = int(sys.argv[1]), int(sys.argv[2])
cache = socket.create_connection(("127.0.0.1", cache_port))
channel = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port)).channel()
channel.queue_declare("orders")
print("ready", flush=True)
for n, (method, properties, body) in enumerate(channel.consume("orders")):
    cache.sendall(b"set order:%d 0 0 %d\r\n%s\r\n" % (n, len(body), body))
    if cache.recv(64) != b"STORED\r\n":
        sys.exit("memcached did not store the order")
    channel.basic_ack(method.delivery_tag)
