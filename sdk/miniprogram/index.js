'use strict';
/**
 * qrlaunch landing page helper for WeChat mini programs.
 *
 * WeChat opens the mini program's landing page in two ways when its own
 * scanner reads a printed code:
 *   - a URL QR code matching a QR rule of the mini program ("扫普通链接二维码
 *     打开小程序"): `options.q` is the scanned URL, encoded once, and
 *     `options.scancode_time` the scan time;
 *   - a mini program code made by `getwxacodeunlimit`: `options.scene` is the
 *     code's scene (here: the launch code), encoded once.
 * `land(options, config)` asks qrlaunch (`GET /v1/resolve`) where that code
 * leads now and goes there: `wx.redirectTo` for a page of this mini program
 * (`wx.reLaunch` for a tab bar page, which `redirectTo` refuses), or, for
 * another mini program, `wx.navigateToMiniProgram` once the user taps (WeChat
 * refuses it without a tap since base library 2.3.0). When it cannot, it
 * says so (with the entry's fallback link when there is one) and stops: it
 * retries a failed request once and never navigates back to the landing page.
 */

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_RETRY_DELAY_MS = 800;

const MESSAGES = {
  en: {
    title: 'Cannot open this code',
    notFound: 'This QR code is not known.',
    gone: 'This QR code has been switched off or has expired.',
    offline: 'No connection to the server. Check the network and scan again.',
    badCode: 'This QR code could not be read.',
    navigate: 'The page of this QR code could not be opened.',
    nothing: 'This page was opened without a QR code.',
    other: 'This QR code opens another mini program.',
    open: 'Open',
    copy: 'Copy link',
    ok: 'OK',
    copied: 'Link copied: open it in a browser',
  },
  zh: {
    title: '无法打开此二维码',
    notFound: '无法识别此二维码。',
    gone: '此二维码已停用或已过期。',
    offline: '无法连接服务器，请检查网络后重新扫码。',
    badCode: '无法读取此二维码。',
    navigate: '无法打开此二维码对应的页面。',
    nothing: '此页面不是通过扫码打开的。',
    other: '此二维码将打开另一个小程序。',
    open: '打开',
    copy: '复制链接',
    ok: '知道了',
    copied: '链接已复制，请在浏览器中打开',
  },
};

/** Decodes a value WeChat encoded once; a value that is not valid
 * percent-encoding is taken as it is. */
function decodeOnce(value) {
  if (typeof value !== 'string') return '';
  try {
    return decodeURIComponent(value);
  } catch (e) {
    return value;
  }
}

/**
 * What the page was opened with: `{ url, scancodeTime }` for a URL QR code,
 * `{ code }` for a mini program code, `null` for neither.
 */
function readLaunch(options) {
  const o = options || {};
  if (o.q) {
    const url = decodeOnce(o.q);
    const time = /^\d{1,12}$/.test(String(o.scancode_time || '')) ? String(o.scancode_time) : null;
    return { url: url, scancodeTime: time };
  }
  if (o.scene) {
    return { code: decodeOnce(o.scene) };
  }
  return null;
}

/** The `/v1/resolve` URL for a launch; calls are marked `scan=1` so that
 * qrlaunch counts them as `wechat-scan`. */
function resolveUrl(baseUrl, launch) {
  const base = String(baseUrl).replace(/\/+$/, '');
  let query = launch.code !== undefined
    ? 'code=' + encodeURIComponent(launch.code)
    : 'url=' + encodeURIComponent(launch.url);
  if (launch.scancodeTime) query += '&scancode_time=' + launch.scancodeTime;
  return base + '/v1/resolve?' + query + '&scan=1';
}

function pageRoute(pageUrl) {
  return String(pageUrl || '').replace(/^\//, '').split('?')[0];
}

/**
 * Resolves the launch in `options` (the page's `onLoad` options) and goes
 * to its page. Returns a promise (never rejected once the configuration is
 * valid) of what happened:
 *   `{ outcome: 'redirected' | 'navigated', answer }`;
 *   `{ outcome: 'confirm', answer, open }` for another mini program: WeChat
 *   opens one only from a tap, so the helper asks with a modal (its confirm
 *   is the tap) and also puts `page.qrlaunchOpen` (bind a button to it) and
 *   `open()` here, each of which navigates and resolves like `land`;
 *   `{ outcome: 'failed', reason, message, fallbackUrl, status }` where
 *   reason is `not_found`, `gone`, `bad_request`, `offline`, `navigate`
 *   or `no_launch`.
 *
 * config:
 *   baseUrl       qrlaunch's public URL (a request domain of the mini program)
 *   wx            the `wx` object (default: the global one)
 *   page          the landing page (`this`): `page.setData({ qrlaunch })`
 *                 shows the state; its `route` guards against loops
 *   appid         this mini program's appid (default: wx.getAccountInfoSync())
 *   timeout       per request, ms (default 5000)
 *   retryDelay    before the one retry, ms (default 800)
 *   lang          'zh' or 'en' (default: from wx.getSystemInfoSync())
 *   showModal     false to leave the message to the page (default true)
 */
function land(options, config) {
  const cfg = config || {};
  const wxApi = cfg.wx || (typeof wx !== 'undefined' ? wx : null); // eslint-disable-line no-undef
  if (!wxApi) return Promise.reject(new Error('qrlaunch: no `wx` object'));
  if (!cfg.baseUrl) return Promise.reject(new Error('qrlaunch: `baseUrl` is required'));
  const text = MESSAGES[cfg.lang || language(wxApi)] || MESSAGES.en;
  const page = cfg.page;
  const show = (state) => {
    if (page && typeof page.setData === 'function') page.setData({ qrlaunch: state });
  };

  const fail = (reason, message, fallbackUrl, status) => {
    const result = { outcome: 'failed', reason: reason, message: message, fallbackUrl: fallbackUrl || null };
    if (status !== undefined) result.status = status;
    show({ state: 'failed', reason: reason, message: message, fallbackUrl: fallbackUrl || '' });
    if (cfg.showModal !== false && typeof wxApi.showModal === 'function') {
      wxApi.showModal({
        title: text.title,
        content: fallbackUrl ? message + '\n' + fallbackUrl : message,
        showCancel: false,
        confirmText: fallbackUrl ? text.copy : text.ok,
        success: (res) => {
          if (fallbackUrl && res && res.confirm && typeof wxApi.setClipboardData === 'function') {
            wxApi.setClipboardData({ data: fallbackUrl });
          }
        },
      });
    }
    return result;
  };

  const launch = readLaunch(options);
  if (!launch) return Promise.resolve(fail('no_launch', text.nothing));
  show({ state: 'loading' });
  const url = resolveUrl(cfg.baseUrl, launch);

  return requestWithRetry(wxApi, url, cfg)
    .then((res) => {
    if (res.error) return fail('offline', text.offline);
    const body = typeof res.data === 'string' ? parseJson(res.data) : res.data || {};
    if (res.statusCode === 200 && (body.kind === 'code' || body.kind === 'rule') && body.page_url) {
      return go(wxApi, cfg, page, body, text, fail);
    }
    if (res.statusCode === 200 && body.kind === 'pass_through') {
      // The URL is on a taken-over host but is not a code or a rule: it
      // belongs to the merchant's web site.
      return fail('not_found', text.notFound, body.location);
    }
    if (res.statusCode === 410) return fail('gone', text.gone, body.fallback_url, 410);
    if (res.statusCode === 404 || res.statusCode === 200) return fail('not_found', text.notFound, null, res.statusCode);
    if (res.statusCode === 400 || res.statusCode === 414) return fail('bad_request', text.badCode, null, res.statusCode);
    return fail('offline', text.offline, null, res.statusCode);
    })
    .catch((e) => fail('offline', text.offline + (e && e.message ? ' (' + e.message + ')' : '')));
}

function go(wxApi, cfg, page, body, text, fail) {
  const ownAppid = cfg.appid || accountAppid(wxApi);
  const fallback = body.fallback_url;
  if (body.appid && ownAppid && body.appid !== ownAppid) {
    return otherMiniProgram(wxApi, cfg, page, body, text, fail);
  }
  return new Promise((resolve) => {
    if (page && page.route && pageRoute(body.page_url) === pageRoute(page.route)) {
      // An entry that points back at the landing page would loop.
      resolve(fail('navigate', text.navigate, fallback));
      return;
    }
    const redirected = () => resolve({ outcome: 'redirected', answer: body });
    wxApi.redirectTo({
      url: body.page_url,
      success: redirected,
      // A tab bar page refuses redirectTo; reLaunch opens it (and any page).
      fail: () =>
        typeof wxApi.reLaunch === 'function'
          ? wxApi.reLaunch({ url: body.page_url, success: redirected, fail: () => resolve(fail('navigate', text.navigate, fallback)) })
          : resolve(fail('navigate', text.navigate, fallback)),
    });
  });
}

/** Another mini program's entry: WeChat opens it only from a user's tap. */
function otherMiniProgram(wxApi, cfg, page, body, text, fail) {
  let opened = null;
  const open = () => {
    if (opened) return opened;
    opened = new Promise((resolve) => {
      wxApi.navigateToMiniProgram({
        appId: body.appid,
        path: body.page_url,
        envVersion: body.env_version || 'release',
        success: () => resolve({ outcome: 'navigated', answer: body }),
        fail: () => {
          opened = null;
          resolve(fail('navigate', text.navigate, body.fallback_url));
        },
      });
    });
    return opened;
  };
  if (page) {
    page.qrlaunchOpen = open;
    if (typeof page.setData === 'function') page.setData({ qrlaunch: { state: 'confirm', appid: body.appid } });
  }
  if (cfg.showModal !== false && typeof wxApi.showModal === 'function') {
    wxApi.showModal({
      title: text.other,
      content: '',
      showCancel: true,
      confirmText: text.open,
      success: (res) => {
        if (res && res.confirm) open();
      },
    });
  }
  return Promise.resolve({ outcome: 'confirm', answer: body, open: open });
}

/** One `wx.request`; resolves `{ statusCode, data }` or `{ error }`. */
function request(wxApi, url, timeout) {
  return new Promise((resolve) => {
    wxApi.request({
      url: url,
      method: 'GET',
      dataType: 'json',
      timeout: timeout,
      success: (res) => resolve({ statusCode: res.statusCode, data: res.data }),
      fail: (err) => resolve({ error: (err && err.errMsg) || 'request:fail' }),
    });
  });
}

/** A request, and one more after a network failure or a server error
 * (5xx); never more than two. */
function requestWithRetry(wxApi, url, cfg) {
  const timeout = cfg.timeout || DEFAULT_TIMEOUT_MS;
  const delay = cfg.retryDelay === undefined ? DEFAULT_RETRY_DELAY_MS : cfg.retryDelay;
  return request(wxApi, url, timeout).then((first) => {
    if (!first.error && first.statusCode < 500) return first;
    return new Promise((resolve) => setTimeout(resolve, delay)).then(() => request(wxApi, url, timeout));
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return {};
  }
}

function accountAppid(wxApi) {
  try {
    return wxApi.getAccountInfoSync().miniProgram.appId;
  } catch (e) {
    return null;
  }
}

function language(wxApi) {
  try {
    const lang = String(wxApi.getSystemInfoSync().language || '');
    return lang.toLowerCase().indexOf('zh') === 0 ? 'zh' : 'en';
  } catch (e) {
    return 'zh';
  }
}

module.exports = { land: land, readLaunch: readLaunch, resolveUrl: resolveUrl, MESSAGES: MESSAGES };
