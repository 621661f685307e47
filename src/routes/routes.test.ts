import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { heuristicRoute, Router } from './routes';

/** URLs as real services see them (API gateways, storefronts, object stores, admin UIs). */
const REAL_WORLD: Array<[string, string]> = [
  ['/api/v1/users/12345/orders?page=2', '/api/v1/users/{id}/orders'],
  ['/api/v1/users/8f14e45f-ceea-467a-9575-6f5e1e8b1c9e', '/api/v1/users/{uuid}'],
  ['/repos/torvalds/linux/commits/5c2f5a7e8b1d9c0f3a6e4d2b1c0a9f8e7d6c5b4a', '/repos/torvalds/linux/commits/{hash}'],
  ['/products/blue-cotton-shirt', '/products/blue-cotton-shirt'],
  ['/orders/ORD-2024-000123/items/7', '/orders/{id}/items/{id}'],
  ['/reports/2026-11-25/summary.pdf', '/reports/{date}/summary.pdf'],
  ['/accounts/ann%40example.com/settings', '/accounts/{email}/settings'],
  ['/static/js/main.3f9a2b1c.chunk.js', '/static/js/main.3f9a2b1c.chunk.js'],
  ['/s/aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRva2Vu9', '/s/{id}'],
  ['/health', '/health'],
  ['/', '/'],
  ['/v2/library/nginx/manifests/sha256:abc', '/v2/library/nginx/manifests/sha256:abc'],
  ['/a/b/c/d/e/f/g/h/i/j/k', '/a/b/c/d/e/f/g/h/{*rest}'],
];

describe('routes', () => {
  it('collapses identifiers in real-world paths and keeps words', () => {
    for (const [path, route] of REAL_WORLD) expect(heuristicRoute(path), path).toBe(route);
  });

  it('prefers configured patterns, most specific first, and ignores what it is told to', () => {
    const r = new Router({ patterns: ['/factorial/{n}', '/users/{id}/orders/{*rest}', '/users/me/orders/{*rest}'], ignore: ['/health', '/metrics'] });
    expect(r.route('/factorial/5?token=x')).toBe('/factorial/{n}');
    expect(r.route('/users/42/orders/7/items')).toBe('/users/{id}/orders/{*rest}');
    expect(r.route('/users/me/orders/1')).toBe('/users/me/orders/{*rest}');
    expect(r.route('/health')).toBeUndefined();
    expect(r.route('/other/12')).toBe('/other/{id}');
    expect(new Router({ heuristic: false }).route('/other/12')).toBeUndefined();
  });

  it('keeps cardinality bounded: a million user ids make one route', () => {
    const routes = new Set<string>();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), fc.uuid(), fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 32, maxLength: 64 }), (id, uuid, hash) => {
        routes.add(heuristicRoute(`/users/${id}/sessions/${uuid}/blobs/${hash}`));
      }),
    );
    expect([...routes].filter((r) => !r.includes('{hash}')).length).toBeLessThanOrEqual(1);
    expect(routes).toContain('/users/{id}/sessions/{uuid}/blobs/{hash}');
  });
});
