// Failed sign-ins per name and per address in a sliding window, on a clock the test moves.
import { describe, expect, it } from 'vitest';
import { LoginLimiter } from './rate-limit.ts';

const MIN = 60_000;

function limiter() {
  const clock = { t: 1_000_000 };
  const l = new LoginLimiter({ name: { failures: 5, windowMs: 5 * MIN }, ip: { failures: 20, windowMs: 5 * MIN } }, () => clock.t);
  return { l, clock };
}

describe('login rate limiter', () => {
  it('refuses the sixth attempt on a name after five failures, until the first leaves the window', () => {
    const { l, clock } = limiter();
    for (let i = 0; i < 5; i++) {
      expect(l.retryAfter('ann', '192.0.2.1')).toBe(0);
      l.fail('ann', '192.0.2.1');
      clock.t += 10_000;
    }
    // From any address, and whatever the case of the name.
    expect(l.retryAfter('ann', '192.0.2.1')).toBe(250);
    expect(l.retryAfter('ANN', '198.51.100.7')).toBe(250);
    expect(l.retryAfter('bob', '192.0.2.1')).toBe(0);
    clock.t += 250_000;
    expect(l.retryAfter('ann', '192.0.2.1')).toBe(0);
    l.fail('ann', '192.0.2.1');
    // Four failures are still in the window (the second to the fifth) plus this one.
    expect(l.retryAfter('ann', '192.0.2.1')).toBe(10);
  });

  it('refuses an address that tries many names', () => {
    const { l, clock } = limiter();
    for (let i = 0; i < 20; i++) {
      expect(l.retryAfter(`user${i}`, '203.0.113.9')).toBe(0);
      l.fail(`user${i}`, '203.0.113.9');
      clock.t += 1000;
    }
    expect(l.retryAfter('someone-new', '203.0.113.9')).toBe(280);
    expect(l.retryAfter('someone-new', '203.0.113.10')).toBe(0);
  });

  it('clears a name on success, but not the address', () => {
    const { l } = limiter();
    for (let i = 0; i < 20; i++) l.fail(i < 5 ? 'ann' : `x${i}`, '192.0.2.1');
    expect(l.retryAfter('ann', '192.0.2.2')).toBeGreaterThan(0);
    l.succeed('ann');
    expect(l.retryAfter('ann', '192.0.2.2')).toBe(0);
    expect(l.retryAfter('ann', '192.0.2.1')).toBeGreaterThan(0);
  });

  it('forgets failures older than the window', () => {
    const { l, clock } = limiter();
    for (let i = 0; i < 4; i++) l.fail('ann', '192.0.2.1');
    clock.t += 5 * MIN + 1;
    l.fail('ann', '192.0.2.1');
    expect(l.retryAfter('ann', '192.0.2.1')).toBe(0);
  });
});
