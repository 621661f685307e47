// bench/live's server doing a realistic request's work: an API endpoint that
// renders 100 records as JSON (about 8.7 KB) per request, about 125 µs of CPU
// on this machine, against the hello server's 10 µs.
//   node api-server.js PORT
const items = Array.from({ length: 100 }, (_, i) => ({ id: i, name: `item ${i}`, price: i * 1.25, tags: ['red', 'large'], stock: (i * 7) % 13 }));
require('http')
  .createServer((request, response) => {
    const page = items.map((item) => ({ ...item, url: `${request.url}${item.id}` }));
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ count: page.length, items: page }));
  })
  .listen(Number(process.argv[2]), '127.0.0.1', () => console.log('ready'));
