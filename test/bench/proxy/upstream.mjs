// The API every contender forwards to: a small JSON answer, keep-alive, no work.
import { createServer } from 'node:http';

const body = JSON.stringify({
  id: 42,
  name: 'Ada Lovelace',
  email: 'ada@example.com',
  roles: ['admin', 'ops'],
});
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    // The policies contender (f) caches this one path (issue #23); the others ignore the header.
    if (req.url === '/users/7') headers['cache-control'] = 'public, max-age=3600';
    res.writeHead(200, headers);
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
