// The view's per-message store of derived features: made once per key, shared, and never across messages.
import { describe, expect, it } from 'vitest';
import { buildMessageView } from './message-view.ts';

const raw = (body: string) => Buffer.from(`From: a@example.org\r\nSubject: s\r\n\r\n${body}\r\n`, 'latin1');

describe('MessageView.derived', () => {
  it('makes a feature once per key and gives every caller the same value', async () => {
    const view = await buildMessageView(raw('hello'));
    const A = {};
    const B = {};
    let made = 0;
    const first = view.derived(A, () => ({ n: ++made }));
    expect(view.derived(A, () => ({ n: ++made }))).toBe(first);
    expect(view.derived(B, () => ({ n: ++made })).n).toBe(2);
    expect(made).toBe(2);
  });

  it('keeps a falsy value instead of making it again', async () => {
    const view = await buildMessageView(raw('hello'));
    const K = {};
    let made = 0;
    view.derived(K, () => (made++, undefined));
    view.derived(K, () => (made++, undefined));
    expect(made).toBe(1);
  });

  it('is separate for each message', async () => {
    const K = {};
    const one = await buildMessageView(raw('one'));
    const two = await buildMessageView(raw('two'));
    expect(one.derived(K, () => 'one')).toBe('one');
    expect(two.derived(K, () => 'two')).toBe('two');
  });
});
