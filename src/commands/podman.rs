//! box answering as `podman`, where the host has none: podman's read-only questions
//! about containers and images, answered about boxes and the store, in podman's JSON and
//! `--format` template shapes, for the desktop tools that ask podman (Ptyxis lists
//! `ps --all --format=json` entries labelled `manager=distrobox` as distroboxes; BoxBuddy
//! wants a podman at all, and asks `stats` and `images` with Go templates; DistroShelf
//! follows `events --format json` and asks `stats`/`images --format json`).
//!
//! Invariants: nothing here changes anything (every answer is read from the store and
//! /proc); anything podman does beyond these questions is refused with the hint that it
//! needs a real podman; every box is labelled as distrobox labels its containers
//! (`manager=distrobox`, `distrobox.unshare_groups=0`), since box's boxes are what
//! distrobox's are to these tools.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::podman::{self as pcli, Podman, PodmanCommand};
use crate::context::Context;
use crate::error::{Exit, failure};
use crate::ops::list::BoxSummary;
use crate::ui::gotemplate::Template;

/// Run `podman ARGS`.
pub fn run(args: Vec<OsString>) -> Result<ExitCode> {
    let mut argv: Vec<OsString> = vec!["podman".into()];
    argv.extend(args);
    let parsed: Podman = match super::distrobox::parse(
        argv,
        "podman",
        "box answers podman's read-only questions about boxes (ps, inspect, stats, images, events, version); the rest needs a real podman",
    )? {
        Ok(parsed) => parsed,
        Err(code) => return Ok(code),
    };
    if parsed.version {
        println!(
            "podman version {} (box {}: boxes only, read-only)",
            pcli::PODMAN_VERSION,
            env!("CARGO_PKG_VERSION")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(command) = parsed.command else {
        return Err(failure(
            "which question? podman needs a command",
            "box answers `podman ps`, `inspect`, `stats`, `images`, `events` and `version` about boxes; anything else needs a real podman",
        )
        .context(Exit(2)));
    };
    // A listing in a pipeline ends quietly when the reader does.
    crate::sys::default_sigpipe();
    match command {
        PodmanCommand::Version(args) => version(args.format.as_deref()),
        PodmanCommand::Ps(args) => ps(&Context::from_env()?, &args),
        PodmanCommand::Inspect(args) => inspect(&Context::from_env()?, &args),
        PodmanCommand::Stats(args) => stats(&Context::from_env()?, &args),
        PodmanCommand::Images(args) => images(&Context::from_env()?, &args),
        PodmanCommand::Events(args) => events(&Context::from_env()?, &args),
    }
}

/// Print `values` as `format` says: a JSON array (`json`), each through a Go template, or
/// `default` (a `table` template) when there is no format.
fn print(
    values: &[Value],
    format: Option<&str>,
    default: &str,
    headers: &BTreeMap<&str, &str>,
    heading: bool,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Some("json") => {
            serde_json::to_writer_pretty(&mut out, values)?;
            writeln!(out)?;
        }
        other => {
            let template = parse_template(other.unwrap_or(default))?;
            let text = template
                .lines(values, headers, heading)
                .map_err(|why| template_error(other.unwrap_or(default), why))?;
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

fn parse_template(text: &str) -> Result<Template> {
    Template::parse(text).map_err(|err| template_error(&err.template, err.why))
}

fn template_error(template: &str, why: String) -> anyhow::Error {
    failure(
        format!("--format `{template}`: {why}"),
        "box's podman window takes `json`, fields (`{{.Names}}`, `{{.State.Status}}`), json, index, join, lower, upper and len; other templates need a real podman",
    )
    .context(Exit(125))
}

fn version(format: Option<&str>) -> Result<ExitCode> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let client = json!({
        "APIVersion": pcli::PODMAN_VERSION,
        "Version": pcli::PODMAN_VERSION,
        "GoVersion": "",
        "GitCommit": "",
        "BuiltTime": "",
        "Built": 0,
        "OsArch": format!("linux/{arch}"),
        "Os": "linux",
        "Box": env!("CARGO_PKG_VERSION"),
    });
    let value = json!({ "Client": client });
    match format {
        Some("json") => println!("{}", serde_json::to_string_pretty(&value)?),
        Some(template) => {
            let text = parse_template(template)?
                .render(&value)
                .map_err(|why| template_error(template, why))?;
            println!("{text}");
        }
        None => {
            println!(
                "Client:       box's podman window (box {})",
                env!("CARGO_PKG_VERSION")
            );
            println!("Version:      {}", pcli::PODMAN_VERSION);
            println!("API Version:  {}", pcli::PODMAN_VERSION);
            println!("OS/Arch:      linux/{arch}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The labels every box has, as distrobox labels its containers.
fn labels() -> Value {
    json!({
        "manager": "distrobox",
        "distrobox.unshare_groups": "0",
        "box.version": env!("CARGO_PKG_VERSION"),
    })
}

/// Unix seconds as podman writes times in JSON and templates.
fn time_text(seconds: u64) -> String {
    crate::ops::list::format_time(seconds)
}

/// A box as `podman ps --format json` shows a container.
fn ps_json(summary: &BoxSummary, image_id: &str, mounts: &[String], now: u64) -> Value {
    let state = summary.state_word();
    let running = state == "running";
    json!({
        "AutoRemove": false,
        "Command": ["box", "holder"],
        "Created": summary.created_at,
        "CreatedAt": format!("{} ago", crate::ops::list::human_duration(now.saturating_sub(summary.created_at))),
        "CIDFile": "",
        "Exited": state == "exited",
        "ExitedAt": if running { 0 } else { summary.since.unwrap_or(0) },
        "ExitCode": 0,
        "Id": summary.id(),
        "Image": summary.image,
        "ImageID": image_id,
        "IsInfra": false,
        "Labels": labels(),
        "Mounts": mounts,
        "Names": [summary.name],
        "Namespaces": {},
        "Networks": [],
        "Pid": summary.pid.unwrap_or(0),
        "Pod": "",
        "PodName": "",
        "Ports": null,
        "Restarts": 0,
        "Size": null,
        "StartedAt": if running { summary.since.unwrap_or(0) } else { 0 },
        "State": state,
        "Status": summary.status_text(now),
    })
}

/// A box as `podman ps --format TEMPLATE` sees a container (podman's template fields).
fn ps_fields(json: &Value, no_trunc: bool) -> Value {
    let id = json["Id"].as_str().unwrap_or_default();
    let created = json["Created"].as_u64().unwrap_or(0);
    json!({
        "ID": if no_trunc { id } else { &id[..12] },
        "Image": json["Image"],
        "ImageID": json["ImageID"],
        "Command": "box holder",
        "CreatedAt": time_text(created),
        "CreatedHuman": json["CreatedAt"],
        "RunningFor": json["CreatedAt"],
        "Status": json["Status"],
        "State": json["State"],
        "Names": json["Names"][0],
        "Labels": json["Labels"],
        "Mounts": json["Mounts"],
        "Ports": "",
        "Networks": "",
        "Pid": json["Pid"],
        "Pod": "",
        "PodName": "",
        "Size": "",
        "Exited": json["Exited"],
        "ExitCode": 0,
        "StartedAt": json["StartedAt"],
        "IsInfra": false,
    })
}

/// Every box, as `ps --format json` entries, with its summary.
fn containers(ctx: &Context) -> Result<Vec<(BoxSummary, Value)>> {
    let now = crate::ops::list::now();
    let images: BTreeMap<String, String> = crate::ops::list::images(ctx)?
        .into_iter()
        .map(|image| (image.reference, image.config_digest.hex().to_owned()))
        .collect();
    let mut out = Vec::new();
    for summary in crate::ops::list::boxes(ctx)? {
        let record = crate::ops::list::record(ctx, &summary.name).ok();
        let mut mounts: Vec<String> = vec![ctx.dirs.home.display().to_string()];
        if let Some(record) = &record {
            mounts.extend(record.home.iter().map(|h| h.display().to_string()));
            mounts.extend(
                record
                    .volumes
                    .iter()
                    .map(|v| v.target.display().to_string()),
            );
        }
        let image_id = record
            .as_ref()
            .and_then(|_| images.get(&summary.image).cloned())
            .unwrap_or_default();
        let entry = ps_json(&summary, &image_id, &mounts, now);
        out.push((summary, entry));
    }
    Ok(out)
}

/// Whether a box's `ps` entry matches every one of podman's `--filter`s.
fn matches(entry: &Value, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(key, value)| match key.as_str() {
        "label" => {
            let (k, v) = match value.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (value.as_str(), None),
            };
            match (&entry["Labels"][k], v) {
                (Value::String(have), Some(want)) => have == want,
                (Value::String(_), None) => true,
                _ => false,
            }
        }
        "name" => entry["Names"][0]
            .as_str()
            .is_some_and(|n| n.contains(value.as_str())),
        "id" => entry["Id"]
            .as_str()
            .is_some_and(|id| id.starts_with(value.as_str())),
        "status" => entry["State"].as_str() == Some(value.as_str()),
        _ => false,
    })
}

/// podman's `--filter KEY=VALUE`s, with the keys box knows.
fn filters(given: &[String], known: &[&str]) -> Result<Vec<(String, String)>> {
    given
        .iter()
        .map(|filter| {
            let (key, value) = filter.split_once('=').unwrap_or((filter, ""));
            if !known.contains(&key) {
                return Err(failure(
                    format!("--filter {filter}: box's podman window has no `{key}` filter"),
                    format!("it filters on {}", known.join(", ")),
                )
                .context(Exit(125)));
            }
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

fn ps(ctx: &Context, args: &pcli::Ps) -> Result<ExitCode> {
    let filters = filters(&args.filter, &["label", "name", "id", "status"])?;
    let entries: Vec<Value> = containers(ctx)?
        .into_iter()
        .map(|(_, entry)| entry)
        .filter(|e| args.all || e["State"] == "running")
        .filter(|e| matches(e, &filters))
        .collect();
    if args.quiet {
        for entry in &entries {
            let id = entry["Id"].as_str().unwrap_or_default();
            println!("{}", if args.no_trunc { id } else { &id[..12] });
        }
        return Ok(ExitCode::SUCCESS);
    }
    let values: Vec<Value> = match args.format.as_deref() {
        Some("json") => entries,
        _ => entries
            .iter()
            .map(|e| ps_fields(e, args.no_trunc))
            .collect(),
    };
    let headers = BTreeMap::from([
        ("ID", "CONTAINER ID"),
        ("CreatedHuman", "CREATED"),
        ("RunningFor", "CREATED"),
    ]);
    print(
        &values,
        args.format.as_deref(),
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedHuman}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
        &headers,
        !args.noheading,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The box named `wanted` (its name, id, or a unique start of its id).
fn find_box<'a>(boxes: &'a [(BoxSummary, Value)], wanted: &str) -> Option<&'a (BoxSummary, Value)> {
    boxes.iter().find(|(s, _)| s.name == wanted).or_else(|| {
        let mut found = boxes.iter().filter(|(s, _)| s.id().starts_with(wanted));
        match (found.next(), found.next()) {
            (Some(one), None) if !wanted.is_empty() => Some(one),
            _ => None,
        }
    })
}

fn inspect(ctx: &Context, args: &pcli::Inspect) -> Result<ExitCode> {
    let kind = args.r#type.as_deref().unwrap_or("all");
    if !matches!(kind, "all" | "container" | "image") {
        return Err(failure(
            format!("--type {kind}: box's podman window inspects containers (boxes) and images"),
            "use --type container or --type image; anything else needs a real podman",
        )
        .context(Exit(125)));
    }
    let boxes = containers(ctx)?;
    let images = crate::ops::list::images(ctx)?;
    let mut values = Vec::new();
    for wanted in &args.names {
        let as_box = (kind != "image")
            .then(|| find_box(&boxes, wanted))
            .flatten();
        if let Some((summary, entry)) = as_box {
            values.push(inspect_box(ctx, summary, entry));
            continue;
        }
        let as_image = (kind != "container")
            .then(|| {
                images.iter().find(|i| {
                    i.reference == *wanted
                        || i.config_digest
                            .hex()
                            .starts_with(wanted.trim_start_matches("sha256:"))
                            && wanted.len() >= 3
                        || i.reference.ends_with(&format!("/{wanted}"))
                })
            })
            .flatten();
        match as_image {
            Some(image) => values.push(image_json(image, &boxes)),
            None => {
                return Err(failure(
                    format!("no such object: \"{wanted}\""),
                    "`podman ps -a` lists the boxes, `podman images` the images",
                )
                .context(Exit(125)));
            }
        }
    }
    match args.format.as_deref() {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&values)?),
        Some(template) => {
            let template_text = template;
            let template = parse_template(template)?;
            for value in &values {
                let text = template
                    .render(value)
                    .map_err(|why| template_error(template_text, why))?;
                println!("{text}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A box as `podman inspect` shows a container.
fn inspect_box(ctx: &Context, summary: &BoxSummary, entry: &Value) -> Value {
    let record = crate::ops::list::record(ctx, &summary.name).ok();
    let running = summary.state_word() == "running";
    let mut mounts = Vec::new();
    if let Some(record) = &record {
        for volume in &record.volumes {
            mounts.push(json!({
                "Type": "bind",
                "Source": volume.source,
                "Destination": volume.target,
                "RW": !volume.read_only,
            }));
        }
    }
    let since = summary.since.map(time_text).unwrap_or_default();
    json!({
        "Id": entry["Id"],
        "Created": time_text(summary.created_at),
        "Path": "box",
        "Args": ["holder"],
        "State": {
            "Status": summary.state_word(),
            "Running": running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": summary.pid.unwrap_or(0),
            "ExitCode": 0,
            "Error": "",
            "StartedAt": if running { since.clone() } else { String::new() },
            "FinishedAt": if running { String::new() } else { since },
        },
        "Image": entry["ImageID"],
        "ImageName": summary.image,
        "Name": summary.name,
        "Mounts": mounts,
        "Config": {
            "Hostname": record.as_ref().and_then(|r| r.hostname.clone()).unwrap_or_else(crate::ops::list::host_name),
            "Env": record.as_ref().map(|r| r.env.iter().chain(&r.image_env).cloned().collect::<Vec<_>>()).unwrap_or_default(),
            "Image": summary.image,
            "Labels": labels(),
            "Cmd": ["box", "holder"],
        },
        "HostConfig": {
            "NetworkMode": "host",
            "PidMode": "host",
            "IpcMode": "host",
            "UTSMode": "private",
        },
    })
}

/// Repository and tag of an image reference (`<none>` without a tag).
fn repository_and_tag(reference: &str) -> (String, String) {
    let (name, _digest) = reference.split_once('@').unwrap_or((reference, ""));
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(colon) => (
            name[..slash + colon].to_owned(),
            name[slash + colon + 1..].to_owned(),
        ),
        None => (name.to_owned(), "<none>".to_owned()),
    }
}

/// An image as `podman images --format json` (and `inspect`) shows it.
fn image_json(image: &crate::ops::list::ImageRecord, boxes: &[(BoxSummary, Value)]) -> Value {
    let (repository, _) = repository_and_tag(&image.reference);
    let created = image.created.clone().unwrap_or_default();
    json!({
        "Id": image.config_digest.hex(),
        "ParentId": "",
        "RepoTags": [image.reference],
        "RepoDigests": [format!("{repository}@{}", image.manifest_digest)],
        "Size": image.size(),
        "SharedSize": 0,
        "VirtualSize": image.size(),
        "Labels": {},
        "Containers": boxes.iter().filter(|(s, _)| s.image == image.reference).count(),
        "Names": [image.reference],
        "Digest": image.manifest_digest.to_string(),
        "Created": image.pulled,
        "CreatedAt": created,
        "Architecture": image.platform.split('/').nth(1).unwrap_or_default(),
        "Os": image.platform.split('/').next().unwrap_or_default(),
    })
}

fn images(ctx: &Context, args: &pcli::Images) -> Result<ExitCode> {
    let filters = filters(&args.filter, &["reference"])?;
    let boxes = containers(ctx)?;
    let now = crate::ops::list::now();
    let records: Vec<_> = crate::ops::list::images(ctx)?
        .into_iter()
        .filter(|i| {
            filters
                .iter()
                .all(|(_, want)| i.reference.contains(want.as_str()))
        })
        .collect();
    if args.quiet {
        for image in &records {
            let id = image.config_digest.hex();
            println!("{}", if args.no_trunc { id } else { &id[..12] });
        }
        return Ok(ExitCode::SUCCESS);
    }
    let values: Vec<Value> = records
        .iter()
        .map(|image| {
            let full = image_json(image, &boxes);
            if args.format.as_deref() == Some("json") {
                return full;
            }
            let (repository, tag) = repository_and_tag(&image.reference);
            let id = image.config_digest.hex();
            json!({
                "Repository": repository,
                "Tag": tag,
                "ID": if args.no_trunc { id } else { &id[..12] },
                "Id": id,
                "Digest": image.manifest_digest.to_string(),
                "CreatedSince": format!("{} ago", crate::ops::list::human_duration(now.saturating_sub(image.pulled))),
                "CreatedAt": full["CreatedAt"],
                "Size": human_size(image.size()),
                "Names": full["Names"],
                "Labels": {},
                "Containers": full["Containers"],
            })
        })
        .collect();
    let headers = BTreeMap::from([("ID", "IMAGE ID"), ("CreatedSince", "CREATED")]);
    print(
        &values,
        args.format.as_deref(),
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
        &headers,
        !args.noheading,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A size as podman writes it: decimal units, four significant digits (`12.55MB`).
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}

fn stats(ctx: &Context, args: &pcli::Stats) -> Result<ExitCode> {
    let boxes = containers(ctx)?;
    let chosen: Vec<&(BoxSummary, Value)> = if args.names.is_empty() {
        boxes
            .iter()
            .filter(|(s, _)| args.all || s.state_word() == "running")
            .collect()
    } else {
        args.names
            .iter()
            .map(|wanted| {
                find_box(&boxes, wanted).ok_or_else(|| {
                    failure(
                        format!("no container with name or ID \"{wanted}\" found"),
                        "`podman ps -a` lists the boxes",
                    )
                    .context(Exit(125))
                })
            })
            .collect::<Result<_>>()?
    };
    let names: Vec<String> = chosen.iter().map(|(s, _)| s.name.clone()).collect();
    let ids: Vec<String> = chosen.iter().map(|(s, _)| s.id()).collect();
    let headers = BTreeMap::from([
        ("ID", "ID"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET IO"),
        ("BlockIO", "BLOCK IO"),
        ("PIDs", "PIDS"),
        ("AVGCPU", "AVG CPU %"),
    ]);
    let interval = Duration::from_secs(args.interval.max(1));
    let mut previous: Option<Vec<crate::ops::usage::Usage>> = None;
    loop {
        let samples = crate::ops::usage::sample(ctx, &names)?;
        let values: Vec<Value> = samples
            .iter()
            .zip(&ids)
            .enumerate()
            .map(|(i, (usage, id))| {
                let before = previous.as_ref().map(|p| (&p[i], interval.as_secs_f64()));
                stats_value(
                    usage,
                    id,
                    before,
                    args.format.as_deref() == Some("json"),
                    args.no_trunc,
                )
            })
            .collect();
        print(
            &values,
            args.format.as_deref(),
            "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
            &headers,
            true,
        )?;
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        previous = Some(samples);
        std::thread::sleep(interval);
    }
}

/// One box's sample as `stats` shows it: podman's JSON keys (`cpu_percent`, ...) with
/// `json`, its template fields (`CPUPerc`, ...) otherwise.
fn stats_value(
    usage: &crate::ops::usage::Usage,
    id: &str,
    previous: Option<(&crate::ops::usage::Usage, f64)>,
    json_keys: bool,
    no_trunc: bool,
) -> Value {
    let id = if no_trunc { id } else { &id[..12] };
    let cpu = format!("{:.2}%", usage.cpu_percent(previous));
    let avg = format!("{:.2}%", usage.cpu_percent(None));
    let mem = format!(
        "{} / {}",
        human_size(usage.memory),
        human_size(usage.memory_total)
    );
    let mem_perc = format!("{:.2}%", usage.memory_percent());
    let cpu_time = format!("{:.3}s", usage.cpu_seconds);
    let pids = usage.pids.to_string();
    if json_keys {
        json!({
            "id": id,
            "name": usage.name,
            "cpu_time": cpu_time,
            "cpu_percent": cpu,
            "avg_cpu": avg,
            "mem_usage": mem,
            "mem_percent": mem_perc,
            "net_io": "-- / --",
            "block_io": "-- / --",
            "pids": pids,
        })
    } else {
        json!({
            "ID": id,
            "Name": usage.name,
            "CPUPerc": cpu,
            "AVGCPU": avg,
            "CPU": usage.cpu_percent(previous),
            "CPUTime": cpu_time,
            "MemUsage": mem,
            "MemUsageBytes": format!("{} / {}", usage.memory, usage.memory_total),
            "MemPerc": mem_perc,
            "NetIO": "-- / --",
            "BlockIO": "-- / --",
            "PIDs": pids,
            "UpTime": format!("{}s", usage.running_for),
        })
    }
}

/// One event in podman's JSON shape.
fn event(summary: &BoxSummary, status: &str, at: u64) -> Value {
    let mut attributes = labels();
    attributes["image"] = json!(summary.image);
    attributes["name"] = json!(summary.name);
    json!({
        "ID": summary.id(),
        "Image": summary.image,
        "Name": summary.name,
        "Status": status,
        "Time": time_text(at),
        "Type": "container",
        "Attributes": attributes,
        "time": at,
        "timeNano": u128::from(at) * 1_000_000_000,
    })
}

fn events(ctx: &Context, args: &pcli::Events) -> Result<ExitCode> {
    let filters = filters(
        &args.filter,
        &["type", "event", "status", "container", "label"],
    )?;
    let wanted = |event: &Value| {
        filters.iter().all(|(key, value)| match key.as_str() {
            "type" => value == "container",
            "event" | "status" => event["Status"] == *value,
            "container" => {
                event["Name"] == *value
                    || event["ID"]
                        .as_str()
                        .is_some_and(|i| i.starts_with(value.as_str()))
            }
            "label" => {
                let (k, v) = value.split_once('=').unwrap_or((value, ""));
                event["Attributes"][k]
                    .as_str()
                    .is_some_and(|have| v.is_empty() || have == v)
            }
            _ => false,
        })
    };
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(text) => Some((text, parse_template(text)?)),
    };
    let emit = |event: Value| -> Result<()> {
        if !wanted(&event) {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        match (&template, args.format.as_deref()) {
            (Some((text, template)), _) => {
                let line = template
                    .render(&event)
                    .map_err(|why| template_error(text, why))?;
                writeln!(out, "{line}")?;
            }
            (None, Some(_)) => writeln!(out, "{}", serde_json::to_string(&event)?)?,
            (None, None) => writeln!(
                out,
                "{} container {} {} (image={}, name={})",
                event["Time"].as_str().unwrap_or_default(),
                event["Status"].as_str().unwrap_or_default(),
                event["ID"].as_str().unwrap_or_default(),
                event["Image"].as_str().unwrap_or_default(),
                event["Name"].as_str().unwrap_or_default(),
            )?,
        }
        out.flush()?;
        Ok(())
    };
    // What the boxes are now, first: each box's creation, and the start of each running one.
    let mut known: BTreeMap<String, BoxSummary> = BTreeMap::new();
    for summary in crate::ops::list::boxes(ctx)? {
        emit(event(&summary, "create", summary.created_at))?;
        if summary.state_word() == "running" {
            emit(event(
                &summary,
                "start",
                summary.since.unwrap_or(summary.created_at),
            ))?;
        }
        known.insert(summary.name.clone(), summary);
    }
    if !args.stream {
        return Ok(ExitCode::SUCCESS);
    }
    // Then what changes, found by looking again every second (box has no daemon to be
    // told by); until the reader goes away.
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if reader_gone() {
            return Ok(ExitCode::SUCCESS);
        }
        let now = crate::ops::list::now();
        let mut current: BTreeMap<String, BoxSummary> = crate::ops::list::boxes(ctx)?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        for (name, before) in &known {
            match current.get(name) {
                None => {
                    if before.state_word() == "running" {
                        emit(event(before, "died", now))?;
                    }
                    emit(event(before, "remove", now))?;
                }
                Some(after) if after.id() != before.id() => {
                    emit(event(before, "remove", now))?;
                    emit(event(after, "create", after.created_at))?;
                }
                Some(after) => match (
                    before.state_word() == "running",
                    after.state_word() == "running",
                ) {
                    (false, true) => emit(event(after, "start", after.since.unwrap_or(now)))?,
                    (true, false) => {
                        emit(event(after, "died", after.since.unwrap_or(now)))?;
                        emit(event(after, "stop", after.since.unwrap_or(now)))?;
                    }
                    _ => {}
                },
            }
        }
        for (name, after) in &current {
            if !known.contains_key(name) {
                emit(event(after, "create", after.created_at))?;
                if after.state_word() == "running" {
                    emit(event(after, "start", after.since.unwrap_or(now)))?;
                }
            }
        }
        std::mem::swap(&mut known, &mut current);
    }
}

/// Whether whoever reads our stdout is gone (a pipe whose reading end closed): a
/// stream of events then has nobody to go to.
fn reader_gone() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
    matches!(poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
        && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_references_read_as_podman_s() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(12_550_000), "12.55MB");
        assert_eq!(human_size(33_412_000_000), "33.41GB");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(
            repository_and_tag("docker.io/library/debian:trixie"),
            ("docker.io/library/debian".to_owned(), "trixie".to_owned())
        );
        assert_eq!(
            repository_and_tag("127.0.0.1:5000/img@sha256:ab"),
            ("127.0.0.1:5000/img".to_owned(), "<none>".to_owned())
        );
    }

    #[test]
    fn filters_match_labels_names_ids_and_states() {
        let entry =
            json!({"Labels": labels(), "Names": ["dev"], "Id": "abcdef", "State": "running"});
        let f = |s: &str| filters(&[s.to_owned()], &["label", "name", "id", "status"]).unwrap();
        assert!(matches(&entry, &f("label=manager=distrobox")));
        assert!(matches(&entry, &f("label=manager")));
        assert!(!matches(&entry, &f("label=manager=toolbox")));
        assert!(matches(&entry, &f("name=de")));
        assert!(matches(&entry, &f("id=abc")));
        assert!(!matches(&entry, &f("status=exited")));
        assert!(filters(&["until=1h".to_owned()], &["label"]).is_err());
    }
}
