//! The overview: scans in 1, 7 and 30 days by class, top codes and rules, lost posters, this node.

use super::*;

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    f: Frame,
    totals: Option<Totals>,
    node: NodeFacts,
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
        (t.class_inapp, total.inapp),
        (t.class_desktop, total.desktop),
        (t.class_other, total.other),
    ]
}

pub async fn overview(ctx: Ctx) -> Response {
    let admin = &ctx.state.admin;
    let status = admin.writer.replica().status();
    let snapshot = admin.writer.replica().load();
    let lag = status.lag();
    let node = NodeFacts {
        applied: status.applied,
        head: status.store_head,
        lag: if lag.is_zero() {
            "0 s".into()
        } else {
            format!("{:.1} s", lag.as_secs_f64())
        },
        entries: snapshot.code_count() + snapshot.rule_count(),
    };
    let today = admin.options.days.today();
    let (from, to) = (date_string(today - 29), date_string(today));
    let unscoped = ctx.is_admin() || ctx.principal.scopes.is_empty();
    let totals = if unscoped {
        let range = format!("from={from}&to={to}&top=10");
        let codes: Result<StatsAnswer, _> = ctx.get(&format!("/admin/v1/stats?kind=code&{range}")).await;
        let rules: Result<StatsAnswer, _> = ctx.get(&format!("/admin/v1/stats?kind=rule&{range}")).await;
        let hosts: Result<StatsAnswer, _> = ctx.get(&format!("/admin/v1/stats?kind=host&{range}")).await;
        match (codes, rules, hosts) {
            (Ok(codes), Ok(rules), Ok(hosts)) => {
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
                Some(Totals {
                    today: merged.last().map_or(0, |d| d.total),
                    week: sum(&merged[merged.len().saturating_sub(7)..]),
                    month: sum(&merged),
                    chart: chart::bars(ctx.t, "overview", &merged),
                    classes: class_totals(ctx.t, &total),
                    top_codes: top(&codes.entries, &|k| format!("/console/codes/{}", encoded(k))),
                    top_rules: top(&rules.entries, &|k| format!("/console/rule?prefix={}", encoded(k))),
                    lost: top(&hosts.entries, &|_| String::new()),
                })
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return refused(&ctx, &e, "/console/"),
        }
    } else {
        None
    };
    let page = OverviewPage {
        f: ctx.frame(ctx.t.overview),
        totals,
        node,
    };
    html(StatusCode::OK, &page)
}
