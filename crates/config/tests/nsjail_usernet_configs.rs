//! nsjail's own configs that use `user_net` (current HEAD and release 3.6,
//! copied unchanged into tests/fixtures/nsjail-*; see NSJAIL-CONFIGS.md):
//! each loads and lowers into a user network of the backend its schema
//! says, and `--use_pasta`/`--user_net` give the same as the config forms.

mod common;

use common::{fixture, jail, TempFile};
use nsjail_config::spec::usernet::{NstunAction, Schema, UserNetBackend, UserNetSpec};

/// Every fixture of `dir`, as (file name, path).
fn fixtures(dir: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(fixture(dir))
        .expect("fixture dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                p.to_string_lossy().into_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Load and lower one config as `nsjail --check --config F -- /bin/true`
/// would (the command only matters for configs without exec_bin).
fn user_net_of(path: &str) -> UserNetSpec {
    let spec = jail(&["--check", "--config", path, "--", "/bin/true"])
        .lower()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    spec.net
        .user
        .unwrap_or_else(|| panic!("{path}: no user network"))
}

#[test]
fn every_current_nsjail_config_with_user_net_lowers() {
    let all = fixtures("nsjail-head");
    assert_eq!(all.len(), 22, "nsjail HEAD has 22 such configs: {all:?}");
    for (name, path) in all {
        let u = user_net_of(&path);
        assert_eq!(u.schema, Schema::Current, "{name}");
        match (&u.backend, name.contains("pasta")) {
            (UserNetBackend::Pasta(_), true) | (UserNetBackend::Nstun(_), false) => {}
            (b, _) => panic!("{name}: unexpected backend {b:?}"),
        }
    }
}

#[test]
fn every_nsjail_36_config_with_user_net_lowers_to_pasta() {
    let all = fixtures("nsjail-3.6");
    assert_eq!(all.len(), 10, "9 configs plus the README example: {all:?}");
    for (name, path) in all {
        let u = user_net_of(&path);
        assert_eq!(u.schema, Schema::Release36, "{name}");
        let UserNetBackend::Pasta(p) = &u.backend else {
            panic!("{name}: not pasta: {:?}", u.backend)
        };
        if name == "configs-znc-with-net.cfg" {
            assert_eq!(p.tcp_in.as_deref(), Some("auto"), "{name}");
        }
        if name == "README-user_net.cfg" {
            let a = p.args(&u.ns_iface).join(" ");
            assert!(a.contains("-t 80,443") && a.contains("--dhcp-dns"), "{a}");
        }
    }
}

#[test]
fn nsjail_rule_configs_keep_their_rules_in_order() {
    let u = user_net_of(&fixture("nsjail-head/tests-redirect.cfg").to_string_lossy());
    let UserNetBackend::Nstun(n) = u.backend else {
        panic!("not NSTUN")
    };
    let names: Vec<&str> = n.rules.iter().map(|r| r.action.name()).collect();
    assert_eq!(names, ["REDIRECT"; 7]);
    assert_eq!(
        n.rules[1].action,
        NstunAction::Redirect {
            ip: Some("1.1.1.1".parse().unwrap()),
            port: Some(53)
        }
    );
    let u = user_net_of(&fixture("nsjail-head/tests-dns_http_host_to_guest.cfg").to_string_lossy());
    let UserNetBackend::Nstun(n) = u.backend else {
        panic!("not NSTUN")
    };
    let fw: Vec<String> = n
        .forwards
        .iter()
        .map(|f| format!("{} {}", f.listen, f.to_port))
        .collect();
    assert_eq!(
        fw,
        ["0.0.0.0:53535 53535", "0.0.0.0:8080 8000", "[::]:8080 8000"]
    );
}

#[test]
fn flags_match_the_config_forms() {
    let flag = jail(&["--use_pasta", "--", "/bin/true"]).lower().unwrap();
    let cfg = TempFile::new("on36.cfg", b"user_net { enable: true }\n");
    let file = jail(&["--config", &cfg.path(), "--", "/bin/true"])
        .lower()
        .unwrap();
    assert_eq!(flag.net.user, file.net.user);
    assert!(matches!(
        flag.net.user.as_ref().unwrap().backend,
        UserNetBackend::Pasta(_)
    ));
    let flag = jail(&["--user_net", "--", "/bin/true"]).lower().unwrap();
    assert!(matches!(
        flag.net.user.unwrap().backend,
        UserNetBackend::Nstun(_)
    ));
    // --use_pasta on a current-schema config: one error naming both.
    let cur = TempFile::new("cur.cfg", b"user_net { backend: NSTUN }\n");
    let e = jail(&["--config", &cur.path(), "--use_pasta", "--", "/bin/true"])
        .lower()
        .unwrap_err()
        .to_string();
    assert!(e.contains("enable") && e.contains("backend"), "{e}");
}
