// The shop API of the shop scenario: orders from PostgreSQL (node-postgres,
// extended protocol), stock from MariaDB (mysql2, prepared statements), a hit
// counter in Redis (RESP over a plain socket).
//   node shop.js PORT PG_PORT REDIS_PORT MARIADB_PORT
const http = require('node:http');
const net = require('node:net');
const { Client } = require('pg');
const mysql = require('mysql2/promise');
const [port, pgPort, redisPort, mariadbPort] = process.argv.slice(2).map(Number);
let stock;

const pg = new Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', database: 'postgres' });
const redis = net.connect(redisPort, '127.0.0.1');
const waiting = [];
redis.on('data', (b) => {
  for (const line of b.toString().split('\r\n').filter(Boolean)) waiting.shift()?.(line);
});
const incr = (key) => new Promise((resolve) => {
  waiting.push(resolve);
  redis.write(`*2\r\n$4\r\nINCR\r\n$${key.length}\r\n${key}\r\n`);
});

http.createServer(async (req, res) => {
  const m = /^\/orders\/(\d+)$/.exec(req.url);
  if (!m) return res.writeHead(404).end();
  const hits = await incr(`hits:${m[1]}`);
  const r = await pg.query('SELECT item FROM orders WHERE id = $1', [Number(m[1])]);
  if (r.rows.length === 0) return res.writeHead(404).end('no such order\n');
  const [rows] = await stock.execute('SELECT qty FROM stock WHERE item = ?', [r.rows[0].item]);
  res.end(`${r.rows[0].item} (${hits.slice(1)} views, ${rows[0]?.qty ?? 0} in stock)\n`);
}).listen(port, '127.0.0.1', async () => {
  await pg.connect();
  stock = await mysql.createConnection({ host: '127.0.0.1', port: mariadbPort, user: 'root', database: 'shop' });
  console.log('ready');
});
