'use strict';
// A stand-in for the `wx` object of a mini program, for tests: `request`
// makes real HTTP requests (as `wx.request` documents them: `success` for
// every HTTP answer, whatever its status, `fail` for network errors and
// timeouts, `data` parsed as JSON when it is JSON); navigation and modals
// are recorded and succeed unless told to fail.

function fakeWx(options) {
  const o = options || {};
  const calls = {
    request: [],
    redirectTo: [],
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
      fetch(call.url, { method: call.method || 'GET', signal: controller.signal })
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
      done(call, o.navigationFails, 'redirectTo');
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
