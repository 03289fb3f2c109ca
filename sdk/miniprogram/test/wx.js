'use strict';
// A stand-in for the `wx` object of a mini program, for tests: `request`
// makes real HTTP requests (as `wx.request` documents them: `success` for
// every HTTP answer, whatever its status, `fail` for network errors and
// timeouts, `data` parsed as JSON when it is JSON); navigation and modals
// are recorded and succeed unless told to fail.

/** What wx.request sends as User-Agent on an Android phone. */
const WECHAT_UA =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) ' +
  'Version/4.0 Chrome/126.0.6478.188 Mobile Safari/537.36 XWEB/1260059 MMWEBSDK/20240501 MMWEBID/2110 ' +
  'MicroMessenger/8.0.50.2701(0x28003253) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64 miniProgram/wx1234567890abcdef';

function fakeWx(options) {
  const o = options || {};
  const calls = {
    request: [],
    redirectTo: [],
    reLaunch: [],
    navigateToMiniProgram: [],
    showModal: [],
    setClipboardData: [],
  };
  const done = (call, fail, name) => {
    if (fail) {
      if (call.fail) call.fail({ errMsg: name + ':fail page not found' });
    } else if (call.success) {
      call.success({ errMsg: name + ':ok', confirm: true });
    }
  };
  return {
    calls: calls,
    request(call) {
      calls.request.push(call.url);
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), call.timeout || 60000);
      // wx.request sends WeChat's own User-Agent; pages cannot change it.
      const headers = { 'User-Agent': WECHAT_UA };
      fetch(call.url, { method: call.method || 'GET', headers: headers, signal: controller.signal })
        .then((res) =>
          res.text().then((text) => {
            let data = text;
            if ((call.dataType || 'json') === 'json') {
              try {
                data = JSON.parse(text);
              } catch (e) {
                data = text;
              }
            }
            const header = {};
            res.headers.forEach((v, k) => {
              header[k] = v;
            });
            call.success && call.success({ statusCode: res.status, data: data, header: header });
          }),
        )
        .catch((err) => {
          const timedOut = controller.signal.aborted;
          call.fail && call.fail({ errMsg: timedOut ? 'request:fail timeout' : 'request:fail ' + err.message });
        })
        .finally(() => clearTimeout(timer));
    },
    redirectTo(call) {
      calls.redirectTo.push(call.url);
      // WeChat refuses redirectTo to a tab bar page.
      const tab = (o.tabBar || []).some((p) => call.url.replace(/^\//, '').split('?')[0] === p);
      done(call, o.navigationFails || tab, 'redirectTo');
    },
    reLaunch(call) {
      calls.reLaunch.push(call.url);
      done(call, o.navigationFails, 'reLaunch');
    },
    navigateToMiniProgram(call) {
      calls.navigateToMiniProgram.push({ appId: call.appId, path: call.path, envVersion: call.envVersion });
      done(call, o.navigationFails, 'navigateToMiniProgram');
    },
    showModal(call) {
      calls.showModal.push({ title: call.title, content: call.content, confirmText: call.confirmText });
      done(call, false, 'showModal');
    },
    setClipboardData(call) {
      calls.setClipboardData.push(call.data);
      done(call, false, 'setClipboardData');
    },
    getAccountInfoSync() {
      return { miniProgram: { appId: o.appid || 'wx1234567890abcdef', envVersion: 'release' } };
    },
    getSystemInfoSync() {
      return { language: o.language || 'en' };
    },
  };
}

module.exports = { fakeWx };
