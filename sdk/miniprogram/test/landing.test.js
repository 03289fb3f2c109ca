'use strict';
// The landing page helper against a running qrlaunch over real HTTP.
//
// Needs QRLAUNCH_BASE, the scan URL of a qrlaunch seeded with the table in
// tests/it/miniprogram.rs, and QRLAUNCH_DOWN, a URL where nothing listens.
// `cargo test --test it miniprogram` starts both and runs this file; the
// Rust side then checks the counts these calls left (3 `wechat-scan` scans
// of `spring24`, 1 of the rule).

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { land, readLaunch } = require('..');
const { fakeWx } = require('./wx');

const BASE = process.env.QRLAUNCH_BASE;
const DOWN = process.env.QRLAUNCH_DOWN;
if (!BASE || !DOWN) {
  throw new Error('set QRLAUNCH_BASE and QRLAUNCH_DOWN (run `cargo test --test it miniprogram`)');
}
const OWN_APPID = 'wx1234567890abcdef';

function page(route) {
  return {
    route: route || 'pages/landing/index',
    states: [],
    setData(data) {
      this.states.push(data.qrlaunch);
    },
  };
}

function run(options, extra) {
  const wx = fakeWx((extra && extra.wx) || {});
  const p = page(extra && extra.route);
  const config = Object.assign({ baseUrl: BASE, wx: wx, page: p, timeout: 2000, retryDelay: 50 }, (extra && extra.config) || {});
  return land(options, config).then((result) => ({ result, wx, page: p }));
}

/** What WeChat hands the page: the value encoded once. */
const enc = encodeURIComponent;

test('a launch code printed as a URL, read by WeChat (q)', async () => {
  const { result, wx, page } = await run({ q: enc(BASE + '/spring24'), scancode_time: '1700000000' });
  assert.equal(result.outcome, 'redirected');
  assert.deepEqual(wx.calls.redirectTo, ['/pages/promo/index?id=42&from=poster']);
  assert.equal(wx.calls.request.length, 1);
  assert.match(wx.calls.request[0], /&scan=1$/);
  assert.deepEqual(wx.calls.navigateToMiniProgram, []);
  assert.deepEqual(page.states, [{ state: 'loading' }]);
});

test('a mini program code (scene)', async () => {
  const { result, wx } = await run({ scene: enc('spring24') });
  assert.equal(result.outcome, 'redirected');
  assert.deepEqual(wx.calls.redirectTo, ['/pages/promo/index?id=42&from=poster']);
  assert.ok(wx.calls.request[0].startsWith(BASE + '/v1/resolve?code=spring24'));
});

test('a legacy URL (q) opens the rule page with its query, q and scancode_time', async () => {
  const scanned = 'https://app.shop-example.com/download?channel=poster7&x=中文';
  const { result, wx } = await run({ q: enc(scanned), scancode_time: '1700000000' });
  assert.equal(result.outcome, 'redirected', JSON.stringify(result));
  assert.equal(wx.calls.redirectTo.length, 1);
  const target = wx.calls.redirectTo[0];
  assert.equal(target, '/pages/download/index?from=legacy&q=' + enc(scanned) + '&scancode_time=1700000000');
  // The page reads it as WeChat's own rule would have handed it over.
  const query = new URLSearchParams(target.split('?')[1]);
  assert.equal(query.get('from'), 'legacy');
  assert.equal(query.get('q'), scanned);
  assert.equal(query.get('scancode_time'), '1700000000');
});

test("another mini program's entry opens from a tap, with navigateToMiniProgram and its env_version", async () => {
  // The modal's confirm is the tap (the stand-in confirms every modal).
  const { result, wx, page } = await run({ scene: enc('other') });
  assert.equal(result.outcome, 'confirm');
  assert.equal(page.states.at(-1).state, 'confirm');
  assert.deepEqual(wx.calls.navigateToMiniProgram, [
    { appId: 'wx00000000000000ab', path: '/pages/shop/index?shop=9', envVersion: 'trial' },
  ]);
  assert.deepEqual(wx.calls.redirectTo, []);
  // Without the modal, the page's button does it, once however often tapped.
  const quiet = await run({ scene: enc('other') }, { config: { showModal: false } });
  assert.deepEqual(quiet.wx.calls.navigateToMiniProgram, []);
  const [first, second] = await Promise.all([quiet.page.qrlaunchOpen(), quiet.result.open()]);
  assert.equal(first.outcome, 'navigated');
  assert.equal(second.outcome, 'navigated');
  assert.equal(quiet.wx.calls.navigateToMiniProgram.length, 1);
});

test('a tab bar page, which redirectTo refuses, opens with reLaunch', async () => {
  const { result, wx } = await run({ scene: enc('spring24') }, { wx: { tabBar: ['pages/promo/index'] } });
  assert.equal(result.outcome, 'redirected');
  assert.deepEqual(wx.calls.redirectTo, ['/pages/promo/index?id=42&from=poster']);
  assert.deepEqual(wx.calls.reLaunch, ['/pages/promo/index?id=42&from=poster']);
});

test('a throwing wx call ends in a message, not a rejected promise', async () => {
  const wx = fakeWx();
  wx.request = () => {
    throw new Error('boom');
  };
  const result = await land({ scene: enc('spring24') }, { baseUrl: BASE, wx: wx, showModal: false });
  assert.equal(result.reason, 'offline');
});

test('a switched-off or expired code (410) shows the fallback, once', async () => {
  const { result, wx, page } = await run({ scene: enc('expired') });
  assert.equal(result.outcome, 'failed');
  assert.equal(result.reason, 'gone');
  assert.equal(result.fallbackUrl, 'https://example.com/over');
  assert.equal(wx.calls.request.length, 1, 'a 410 is an answer: no retry');
  assert.deepEqual(wx.calls.redirectTo, []);
  assert.equal(wx.calls.showModal.length, 1);
  assert.match(wx.calls.showModal[0].content, /https:\/\/example\.com\/over/);
  assert.deepEqual(wx.calls.setClipboardData, ['https://example.com/over']);
  assert.equal(page.states.at(-1).state, 'failed');
  assert.equal(page.states.at(-1).fallbackUrl, 'https://example.com/over');
  const off = await run({ scene: enc('off') });
  assert.equal(off.result.reason, 'gone');
  assert.equal(off.result.fallbackUrl, null);
  assert.deepEqual(off.wx.calls.setClipboardData, []);
});

test('an unknown code (404) says so, in Chinese for a Chinese phone', async () => {
  const { result, wx } = await run({ scene: enc('nope') }, { wx: { language: 'zh_CN' } });
  assert.equal(result.reason, 'not_found');
  assert.equal(result.status, 404);
  assert.equal(wx.calls.request.length, 1);
  assert.equal(wx.calls.showModal[0].title, '无法打开此二维码');
  assert.deepEqual(wx.calls.redirectTo, []);
});

test('a q that is not ours', async () => {
  const { result, wx } = await run({ q: enc('https://elsewhere.example.org/poster?id=1') });
  assert.equal(result.reason, 'not_found');
  assert.deepEqual(wx.calls.redirectTo, []);
  assert.deepEqual(wx.calls.navigateToMiniProgram, []);
});

test('a server that is down: one retry, then a message', async () => {
  const { result, wx } = await run({ scene: enc('spring24') }, { config: { baseUrl: DOWN } });
  assert.equal(result.reason, 'offline');
  assert.equal(wx.calls.request.length, 2);
  assert.deepEqual(wx.calls.redirectTo, []);
  assert.equal(wx.calls.showModal.length, 1);
});

test('a server that does not answer: timeout, one retry, then a message', async () => {
  const sockets = new Set();
  const silent = http.createServer(() => {});
  silent.on('connection', (s) => sockets.add(s));
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const base = 'http://127.0.0.1:' + silent.address().port;
    const started = Date.now();
    const { result, wx } = await run({ scene: enc('spring24') }, { config: { baseUrl: base, timeout: 200 } });
    assert.equal(result.reason, 'offline');
    assert.equal(wx.calls.request.length, 2);
    assert.ok(Date.now() - started < 5000, 'gives up after two timeouts');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('an entry that points back at the landing page does not loop', async () => {
  const { result, wx } = await run({ scene: enc('loop') });
  assert.equal(result.reason, 'navigate');
  assert.deepEqual(wx.calls.redirectTo, []);
  assert.equal(wx.calls.request.length, 1);
});

test('a page this build does not have: a message, not a loop', async () => {
  const { result, wx } = await run({ scene: enc('broken') }, { wx: { navigationFails: true } });
  assert.equal(result.reason, 'navigate');
  assert.equal(result.fallbackUrl, 'https://example.com/broken');
  assert.deepEqual(wx.calls.redirectTo, ['/pages/missing/index']);
  assert.deepEqual(wx.calls.reLaunch, ['/pages/missing/index']);
  assert.equal(wx.calls.request.length, 1);
});

test('opened without a code: no request', async () => {
  const { result, wx } = await run({});
  assert.equal(result.reason, 'no_launch');
  assert.deepEqual(wx.calls.request, []);
});

test('readLaunch decodes q and scene once, and only once', () => {
  assert.deepEqual(readLaunch({ q: enc('https://a.example/x?y=%2F') }), { url: 'https://a.example/x?y=%2F', scancodeTime: null });
  assert.deepEqual(readLaunch({ scene: 'a%21b' }), { code: 'a!b' });
  assert.deepEqual(readLaunch({ scene: '100%' }), { code: '100%' }, 'bad escapes are taken as they are');
  assert.equal(readLaunch({ q: 'x', scancode_time: 'soon' }).scancodeTime, null);
  assert.equal(readLaunch(undefined), null);
});
