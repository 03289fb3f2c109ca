//! The overview: scans in 1, 7 and 30 days by class, top codes and rules, lost posters, this node.

use super::*;

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    f: Frame,
    totals: Option<Totals>,
    node: Option<NodeFacts>,
}

struct Totals {
    today: u64,
    week: u64,
    month: u64,
    chart: String,
    classes: Vec<(&'static str, u64)>,
    top_codes: Vec<Top>,
    top_rules: Vec<Top>,
    lost: Vec<Top>,
}

struct Top {
    key: String,
    href: String,
    total: u64,
}

struct NodeFacts {
    applied: i64,
    head: i64,
    lag: String,
    entries: usize,
}

fn add_day(into: &mut DayCounts, d: &DayCounts) {
    into.ios += d.ios;
    into.android += d.android;
    into.wechat += d.wechat;
    into.wechat_scan += d.wechat_scan;
    into.inapp += d.inapp;
    into.desktop += d.desktop;
    into.other += d.other;
    into.not_found += d.not_found;
    into.total += d.total;
}

fn class_totals(t: &Text, total: &DayCounts) -> Vec<(&'static str, u64)> {
    vec![
        (t.class_ios, total.ios),
        (t.class_android, total.android),
        (t.class_wechat, total.wechat),
        (t.class_wechat_scan, total.wechat_scan),
        (t.class_inapp, total.inapp),
        (t.class_desktop, total.desktop),
        (t.class_other, total.other),
    ]
}

/// This node's table and how current it is: for keys that may read the
/// whole fleet's counts (the stats API said so), like the totals.
fn node_facts(ctx: &Ctx) -> NodeFacts {
    let replica = ctx.state.admin.writer.replica();
    let status = replica.status();
    let snapshot = replica.load();
    let lag = status.lag();
    NodeFacts {
        applied: status.applied,
        head: status.store_head,
        lag: if lag.is_zero() {
            "0 s".into()
        } else {
            format!("{:.1} s", lag.as_secs_f64())
        },
        entries: snapshot.code_count() + snapshot.rule_count(),
    }
}

pub async fn overview(ctx: Ctx) -> Response {
    let today = ctx.state.admin.options.days.today();
    let (from, to) = (date_string(today - 29), date_string(today));
    let range = format!("from={from}&to={to}&top=10");
    // Whole-fleet counts are for keys without scopes: the API decides, and
    // a key it refuses (403) gets a pointer to its campaigns instead.
    let codes: Result<StatsAnswer, _> = ctx.get(&format!("/admin/v1/stats?kind=code&{range}")).await;
    let (codes, rules, hosts) = match codes {
        Err(refusal) if refusal.status == StatusCode::FORBIDDEN => {
            let page = OverviewPage {
                f: ctx.frame(ctx.t.overview),
                totals: None,
                node: None,
            };
            return html(StatusCode::OK, &page);
        }
        Err(refusal) => return refused(&ctx, &refusal, "/console/"),
        Ok(codes) => {
            let rules = ctx
                .get::<StatsAnswer>(&format!("/admin/v1/stats?kind=rule&{range}"))
                .await;
            let hosts = ctx
                .get::<StatsAnswer>(&format!("/admin/v1/stats?kind=host&{range}"))
                .await;
            match (rules, hosts) {
                (Ok(rules), Ok(hosts)) => (codes, rules, hosts),
                (Err(refusal), _) | (_, Err(refusal)) => return refused(&ctx, &refusal, "/console/"),
            }
        }
    };
    let mut merged = chart::every_day(&from, &to, &codes.days);
    for (day, r) in merged.iter_mut().zip(chart::every_day(&from, &to, &rules.days)) {
        add_day(day, &r);
    }
    let sum = |days: &[DayCounts]| days.iter().map(|d| d.total).sum::<u64>();
    let mut total = codes.total.clone();
    add_day(&mut total, &rules.total);
    let top = |entries: &[crate::edge::api::EntryTotal], href: &dyn Fn(&str) -> String| {
        entries
            .iter()
            .map(|e| Top {
                key: e.key.clone(),
                href: href(&e.key),
                total: e.total,
            })
            .collect::<Vec<_>>()
    };
    let totals = Totals {
        today: merged.last().map_or(0, |d| d.total),
        week: sum(&merged[merged.len().saturating_sub(7)..]),
        month: sum(&merged),
        chart: chart::bars(ctx.t, "overview", &merged),
        classes: class_totals(ctx.t, &total),
        top_codes: top(&codes.entries, &|k| format!("/console/codes/{}", encoded(k))),
        top_rules: top(&rules.entries, &|k| format!("/console/rule?prefix={}", encoded(k))),
        lost: top(&hosts.entries, &|_| String::new()),
    };
    let page = OverviewPage {
        f: ctx.frame(ctx.t.overview),
        totals: Some(totals),
        node: Some(node_facts(&ctx)),
    };
    html(StatusCode::OK, &page)
}
