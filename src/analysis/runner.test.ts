// The runner's promises to a check: symbols land with their scores, ctx.hit works detached, a throw or a timeout
// becomes CHECK_FAILED, and the signal a check holds fires when its time runs out, whenever it asked for it.
import { describe, expect, it } from 'vitest';
import { defineCheck, type Check, type PhaseInput } from './check.ts';
import { Runner } from './runner.ts';
import { ScoreTable } from './scoring.ts';
import { silentLogger } from '../core/log.ts';

const input: PhaseInput = {
  session: { ip: '192.0.2.1', ourHostname: 'mx.example.test', ourDomains: ['example.test'], trusted: false, tls: false, helo: 'client.example' },
};

function runnerOf(checks: Check[], timeoutMs = 1_000): Runner {
  return new Runner({ checks, options: new Map(), scores: new ScoreTable(checks, {}), timeoutMs, log: silentLogger });
}

const sym = { score: 2, group: 'headers' as const, description: 'test symbol' };

describe('Runner', () => {
  it('records hits with their score and weight, also through a detached ctx.hit', async () => {
    const check = defineCheck({
      name: 'detached',
      phase: 'helo',
      symbols: { TEST_ONE: sym, TEST_TWO: sym },
      run(_input, ctx) {
        ctx.hit('TEST_ONE', { weight: 0.5, detail: ['x'] });
        const { hit } = ctx;
        hit('TEST_TWO');
      },
    });
    const { hits, mustDefer } = await runnerOf([check]).run('helo', input);
    expect(mustDefer).toBe(false);
    expect(hits).toEqual([
      { name: 'TEST_ONE', check: 'detached', score: 1, weight: 0.5, detail: ['x'] },
      { name: 'TEST_TWO', check: 'detached', score: 2, weight: 1, detail: undefined },
    ]);
  });

  it('turns an undeclared symbol into CHECK_FAILED and defers when the check asks for it', async () => {
    const check = defineCheck({
      name: 'typo',
      phase: 'helo',
      onError: 'defer',
      symbols: { TEST_ONE: sym },
      run(_input, ctx) {
        (ctx.hit as (s: string) => void)('TEST_TYPO');
      },
    });
    const { hits, mustDefer } = await runnerOf([check]).run('helo', input);
    expect(mustDefer).toBe(true);
    expect(hits).toEqual([{ name: 'CHECK_FAILED', check: 'typo', score: 0, weight: 0, detail: ['typo', 'check typo emitted undeclared symbol TEST_TYPO'] }]);
  });

  it('gives up on a check at its timeout and aborts its signal, whether taken before or only after', async () => {
    const seen: { before?: boolean; after?: boolean } = {};
    const early = defineCheck({
      name: 'early',
      phase: 'helo',
      symbols: { TEST_ONE: sym },
      async run(_input, ctx) {
        const signal = ctx.signal;
        await new Promise((r) => setTimeout(r, 80));
        seen.before = signal.aborted;
      },
    });
    const late = defineCheck({
      name: 'late',
      phase: 'helo',
      symbols: { TEST_TWO: sym },
      async run(_input, ctx) {
        await new Promise((r) => setTimeout(r, 80));
        // First asked for after the runner gave up: it must say so, or work would go on for nothing.
        seen.after = ctx.signal.aborted;
      },
    });
    const { hits } = await runnerOf([early, late], 20).run('helo', input);
    expect(hits.map((h) => [h.name, h.check, h.detail?.[1]])).toEqual([
      ['CHECK_FAILED', 'early', 'timed out after 20 ms'],
      ['CHECK_FAILED', 'late', 'timed out after 20 ms'],
    ]);
    await new Promise((r) => setTimeout(r, 120));
    expect(seen).toEqual({ before: true, after: true });
  });

  it('runs a check after the checks it names, which alone it can see through ctx.saw', async () => {
    const slow = defineCheck({
      name: 'slow',
      phase: 'helo',
      symbols: { TEST_ONE: sym },
      async run(_input, ctx) {
        await new Promise((r) => setTimeout(r, 30));
        ctx.hit('TEST_ONE', { detail: ['first'] });
      },
    });
    const other = defineCheck({ name: 'other', phase: 'helo', symbols: { TEST_THREE: sym }, run: (_i, ctx) => ctx.hit('TEST_THREE') });
    const reader = defineCheck({
      name: 'reader',
      phase: 'helo',
      after: ['slow', 'absent'],
      symbols: { TEST_TWO: sym },
      run(_input, ctx) {
        // Only the checks in `after` are visible; one that is not in the registry is ignored.
        if (ctx.saw('TEST_ONE')?.detail?.[0] === 'first' && !ctx.saw('TEST_THREE')) ctx.hit('TEST_TWO');
      },
    });
    const { hits } = await runnerOf([reader, slow, other]).run('helo', input);
    expect(hits.map((h) => h.name)).toEqual(['TEST_THREE', 'TEST_ONE', 'TEST_TWO']);
  });

  it('refuses checks that name each other in `after`', () => {
    const a = defineCheck({ name: 'a', phase: 'helo', after: ['b'], symbols: { TEST_ONE: sym }, run: () => undefined });
    const b = defineCheck({ name: 'b', phase: 'helo', after: ['a'], symbols: { TEST_TWO: sym }, run: () => undefined });
    expect(() => runnerOf([a, b])).toThrow(/cycle: a → b → a/);
  });
});
