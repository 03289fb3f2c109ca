# Varnish 7 in front of qrlaunch (Debian: varnish, varnish-modules).
#
#   varnishd -a :80 -f /etc/varnish/qrlaunch.vcl -s malloc,2g
#
# Purges need a shared secret: put one line of at least 32 random
# characters in /etc/varnish/qrlaunch-purge.secret (readable by varnishd's
# worker, e.g. mode 0640 root:varnish; it is read once per loaded VCL, so
# reload the VCL after changing it), and give every qrlaunch node behind
# this cache the class header, a purge URL pointing here and that secret.
# The secret shows in varnishlog (VSL) to whoever may read it:
#
#   openssl rand -hex 32 >/etc/varnish/qrlaunch-purge.secret
#   QRLAUNCH_PURGE_HEADER="Qrlaunch-Purge-Token: $(cat /etc/varnish/qrlaunch-purge.secret)" \
#     qrlaunch --client-header X-QR-Client --purge-url http://127.0.0.1:80
#
# What this does:
# * classifies clients exactly as qrlaunch does (src/model/client_class.rs: the
#   same markers in the same order; a test checks every User-Agent of its
#   table) and sends the class in X-QR-Client, so one object per class and
#   language is cached instead of one per User-Agent;
# * sends Accept-Language as `zh` (the first language asked is Chinese)
#   or `en`, the two languages the pages have;
# * removes what qrlaunch reads but this cache does not key on (Forwarded,
#   Cookie), and keys on everything else an answer depends on (URL, Host,
#   X-Forwarded-Proto, the class, the language): no request can make this
#   cache store an answer that an ordinary client would not get (see
#   ARCHITECTURE.md, "What a request may change");
# * caches scan answers for their s-maxage, keeps them for stale-if-error
#   while the origin is down; never caches /healthz, /readyz, /v1/ or an
#   answer that says no-store, private or no-cache;
# * gives a cached legacy 302 the time of the request it answers as its
#   scancode_time (qrlaunch marks it in Qrlaunch-Scancode-Time), and tells
#   qrlaunch which fetches are background refreshes (not scans to count);
# * purges by surrogate key (xkey) on `PURGE` with `xkey-purge: KEYS`,
#   from the purgers ACL and with the shared secret only (403 otherwise):
#   a TLS terminator on this host makes every client's address loopback,
#   so the address alone proves nothing.
vcl 4.1;

import std;
import xkey;

backend qrlaunch {
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 1s;
    .first_byte_timeout = 5s;
    .probe = {
        .url = "/healthz";
        .interval = 1s;
        .timeout = 500ms;
        .window = 3;
        .threshold = 2;
    }
}

# Several nodes: a backend for each behind a round-robin director. Delete
# the `qrlaunch` backend above, uncomment the block below (one backend per
# node, each added to the director) and the first line of vcl_recv, and
# list every node in `purgers`. (tests/it/edge.rs runs a fleet through
# exactly this block.)
# --- several nodes: begin
#import directors;
#
#backend node0 {
#    .host = "10.0.0.10";
#    .port = "8080";
#    .connect_timeout = 1s;
#    .first_byte_timeout = 5s;
#    .probe = {
#        .url = "/healthz";
#        .interval = 1s;
#        .timeout = 500ms;
#        .window = 3;
#        .threshold = 2;
#    }
#}
#
#backend node1 {
#    .host = "10.0.0.11";
#    .port = "8080";
#    .connect_timeout = 1s;
#    .first_byte_timeout = 5s;
#    .probe = {
#        .url = "/healthz";
#        .interval = 1s;
#        .timeout = 500ms;
#        .window = 3;
#        .threshold = 2;
#    }
#}
#
#sub vcl_init {
#    new fleet = directors.round_robin();
#    fleet.add_backend(node0);
#    fleet.add_backend(node1);
#}
# --- several nodes: end

# Who may purge: the qrlaunch nodes.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    # set req.backend_hint = fleet.backend();
    if (req.method == "PURGE") {
        if (client.ip !~ purgers || !req.http.Qrlaunch-Purge-Token) {
            return (synth(403, "Forbidden"));
        }
        # The secret file is read once; an empty one refuses every purge.
        if (regsub(std.fileread("/etc/varnish/qrlaunch-purge.secret"), "\s+$", "") == "" ||
            req.http.Qrlaunch-Purge-Token != regsub(std.fileread("/etc/varnish/qrlaunch-purge.secret"), "\s+$", "")) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "Send the keys to purge in xkey-purge"));
        }
        set req.http.n-gone = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Only origin-form targets (`/path?query`) are looked up.
    if (req.url !~ "^/") {
        return (synth(400, "Bad request"));
    }
    unset req.http.Qrlaunch-Purge-Token;
    # Only this cache says when a fetch is a background refresh.
    unset req.http.Qrlaunch-Background-Fetch;
    # The resolve API answers mini program pages, and health checks must
    # say how this node is now: never cached here.
    if (req.url ~ "^/v1/" || req.url ~ "^/(healthz|readyz)(\?|$)") {
        return (pass);
    }
    # qrlaunch reads the scheme from X-Forwarded-Proto (hashed below) or
    # Forwarded (not hashed): drop the one this cache does not key on.
    unset req.http.Forwarded;
    call qrlaunch_classify;
    if (req.http.Accept-Language ~ "^\s*[zZ][hH]") {
        set req.http.Accept-Language = "zh";
    } else {
        set req.http.Accept-Language = "en";
    }
    # Answers do not depend on cookies; a taken-over host's old cookies
    # must not make every request a miss.
    unset req.http.Cookie;
    # With the origin up, serve stale only briefly (stale-while-revalidate);
    # with it down, as long as the object's grace (stale-if-error).
    if (std.healthy(req.backend_hint)) {
        set req.grace = 30s;
    }
    return (hash);
}

# The client class, by the markers of src/model/client_class.rs, in its order.
sub qrlaunch_classify {
    if (!req.http.User-Agent || req.http.User-Agent ~ "^\s*$") {
        set req.http.X-QR-Client = "other";
    } elsif (req.http.User-Agent ~ "wxwork") {
        set req.http.X-QR-Client = "inapp";
    } elsif (req.http.User-Agent ~ "MicroMessenger") {
        set req.http.X-QR-Client = "wechat";
    } elsif (req.http.User-Agent ~ " QQ/|Weibo|AlipayClient|DingTalk|aweme|BytedanceWebview|musical_ly|TikTok|FBAN|FBAV|Instagram") {
        set req.http.X-QR-Client = "inapp";
    } elsif (req.http.User-Agent ~ "bot|Bot|spider|Spider|crawler|facebookexternalhit|WhatsApp/|curl/|Wget/|python-requests|Go-http-client|HeadlessChrome") {
        set req.http.X-QR-Client = "other";
    } elsif (req.http.User-Agent ~ "iPhone|iPad|iPod") {
        set req.http.X-QR-Client = "ios";
    } elsif (req.http.User-Agent ~ "Android|HarmonyOS|OpenHarmony") {
        set req.http.X-QR-Client = "android";
    } elsif (req.http.User-Agent ~ "Windows NT|Macintosh|X11|CrOS") {
        set req.http.X-QR-Client = "desktop";
    } elsif (req.http.User-Agent ~ "Mobile") {
        set req.http.X-QR-Client = "android";
    } else {
        set req.http.X-QR-Client = "other";
    }
}

sub vcl_hash {
    hash_data(req.url);
    if (req.http.host) {
        hash_data(req.http.host);
    } else {
        hash_data(server.ip);
    }
    # Rules match the scheme: a TLS terminator in front says which.
    hash_data(req.http.X-Forwarded-Proto);
    hash_data(req.http.X-QR-Client);
    hash_data(req.http.Accept-Language);
    return (lookup);
}

sub vcl_backend_fetch {
    # A refresh of a stale object in the background answers no scan (the
    # stale hit did, and varnishncsa logs it): qrlaunch does not count it.
    if (bereq.is_bgfetch) {
        set bereq.http.Qrlaunch-Background-Fetch = "1";
    }
}

sub vcl_backend_response {
    # What the origin says must not be stored is not (health checks, 503s
    # while loading, 400s): a short hit-for-miss, never a cached object.
    if (!beresp.http.Cache-Control || beresp.http.Cache-Control ~ "(?i)(no-store|private|no-cache)" ||
        beresp.status >= 500) {
        # Refreshing a stale object in the background: keep the stale one
        # rather than let an answer that must not be stored (a failing
        # origin, a page drawn without its QR code) shadow it.
        if (bereq.is_bgfetch) {
            return (abandon);
        }
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    # stale-if-error: keep the object this long past its TTL, for when the
    # origin is down (vcl_recv shortens it while the origin is up).
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control, "^.*stale-if-error=([0-9]+).*$", "\1s"), 0s);
    }
    return (deliver);
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # A legacy 302 names the scan's time (scancode_time); served from the
    # cache, it is this request's time, not the time of the scan that
    # filled the cache. Pages do the same in the browser.
    if (resp.http.Qrlaunch-Scancode-Time) {
        if (obj.hits > 0 && resp.http.Location) {
            # Ours is the scheme URL's last query item: followed by `&` or
            # the end (an entry's own scancode_time would be followed by
            # `%26`, and the scanned URL's is encoded twice).
            set resp.http.Location = regsub(resp.http.Location,
                "scancode_time%3D[0-9]+(&|$)",
                "scancode_time%3D" + std.integer(time=now) + "\1");
        }
        unset resp.http.Qrlaunch-Scancode-Time;
    }
    # The keys are for this cache, not for browsers.
    unset resp.http.xkey;
    unset resp.http.Surrogate-Key;
}
