//! Authentication against the real `docker-registry`: htpasswd Basic, Bearer tokens from a
//! test issuer, TLS with a test CA, credentials from config.json and a credential helper.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;

use registry::media_types::Compression;
use registry::reference::Reference;
use registry::remote::{push, CredentialSources, Credentials, Remote, RemoteOptions};
use registry::store::testing::make_image;
use registry::store::Store;
use registry::{Error, Platform};
use support::token::TokenServer;
use support::RegistryConfig;

fn store(dir: &std::path::Path) -> Store {
    Store::open(dir.join("store")).unwrap()
}

fn write_config(dir: &std::path::Path, json: &str) {
    std::fs::create_dir_all(dir.join("docker")).unwrap();
    std::fs::write(dir.join("docker/config.json"), json).unwrap();
}

#[test]
fn htpasswd_basic_auth_with_config_json_credentials() {
    let Some(reg) = support::RegistryServer::start_with(RegistryConfig {
        htpasswd: Some(("alice".into(), "s3cret-pw".into())),
        ..Default::default()
    }) else {
        return;
    };
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let src = store(dir.path());
    let desc = make_image(&src, "basic", 1, Compression::Gzip).unwrap();
    let dest = Reference::parse(&format!("{}/private/app:1", reg.host)).unwrap();

    // Anonymous: a clear 401 naming the image and suggesting login.
    let anon = support::remote(dir.path());
    let err = rt
        .block_on(push::push(&anon, &src, &desc, &dest))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Unauthorized { .. }), "{msg}");
    assert!(
        msg.contains("private/app") && msg.contains("kiln login"),
        "{msg}"
    );

    // Wrong password: rejected, and the password is not in the message.
    let creds = support::isolated_credentials(dir.path());
    creds
        .store(&reg.host, &Credentials::basic("alice", "wrong-pw"))
        .unwrap();
    let bad = support::remote(dir.path());
    let err = rt
        .block_on(bad.client(&reg.host).unwrap().ping())
        .unwrap_err();
    assert!(!err.to_string().contains("wrong-pw"), "{err}");

    // Right credentials from config.json (base64 `auth`).
    creds
        .store(&reg.host, &Credentials::basic("alice", "s3cret-pw"))
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("docker/config.json")).unwrap();
    assert!(text.contains("\"auth\"") && !text.contains("s3cret-pw"));
    let remote = support::remote(dir.path());
    rt.block_on(remote.client(&reg.host).unwrap().ping())
        .unwrap();
    let pushed = rt
        .block_on(push::push(&remote, &src, &desc, &dest))
        .unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&desc.digest));
    let dst_dir = tempfile::tempdir().unwrap();
    rt.block_on(registry::remote::pull::pull(
        &remote,
        &store(dst_dir.path()),
        &dest,
        &Platform::host(),
    ))
    .unwrap();

    // Logout removes them.
    assert!(creds.erase(&reg.host).unwrap());
    assert_eq!(creds.get(&reg.host).unwrap(), None);
}

#[test]
fn bearer_token_flow_with_a_signing_issuer() {
    let rt = support::runtime();
    let issuer = TokenServer::start(&rt, Some(("bob".into(), "tok-pw".into())), false);
    let Some(reg) = support::RegistryServer::start_with(RegistryConfig {
        token: Some(issuer.auth()),
        ..Default::default()
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = store(dir.path());
    let desc = make_image(&src, "bearer", 2, Compression::Gzip).unwrap();
    let dest = Reference::parse(&format!("{}/secure/app:v1", reg.host)).unwrap();

    // An anonymous token carries no access: denied/unauthorized, clearly.
    let anon = support::remote(dir.path());
    let err = rt
        .block_on(push::push(&anon, &src, &desc, &dest))
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { .. } | Error::Denied { .. }),
        "{err}"
    );

    write_config(
        dir.path(),
        &format!(
            r#"{{"auths":{{"{}":{{"auth":"Ym9iOnRvay1wdw=="}}}}}}"#,
            reg.host
        ),
    );
    let remote = support::remote(dir.path());
    let before = issuer.issued.load(Ordering::SeqCst);
    let pushed = rt
        .block_on(push::push(&remote, &src, &desc, &dest))
        .unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&desc.digest));
    let issued = issuer.issued.load(Ordering::SeqCst) - before;
    assert!(
        issued <= 2,
        "tokens are cached per scope, not fetched per request ({issued})"
    );
    let dst_dir = tempfile::tempdir().unwrap();
    let p = rt
        .block_on(registry::remote::pull::pull(
            &remote,
            &store(dst_dir.path()),
            &dest,
            &Platform::host(),
        ))
        .unwrap();
    assert_eq!(p.manifest.digest, desc.digest);
}

#[test]
fn bearer_token_in_access_token_field_and_anonymous_pull() {
    let rt = support::runtime();
    let issuer = TokenServer::start(&rt, None, true);
    let Some(reg) = support::RegistryServer::start_with(RegistryConfig {
        token: Some(issuer.auth()),
        ..Default::default()
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = store(dir.path());
    let desc = make_image(&src, "anon", 1, Compression::Zstd).unwrap();
    let dest = Reference::parse(&format!("{}/open/app:v1", reg.host)).unwrap();
    let remote = support::remote(dir.path());
    rt.block_on(push::push(&remote, &src, &desc, &dest))
        .unwrap();
    let img = rt
        .block_on(registry::remote::ops::inspect(
            &remote,
            &dest,
            &Platform::host(),
        ))
        .unwrap();
    assert_eq!(img.manifest_digest, desc.digest);
}

#[test]
fn credential_helper_supplies_and_stores_credentials() {
    let Some(reg) = support::RegistryServer::start_with(RegistryConfig {
        htpasswd: Some(("carol".into(), "helper-pw".into())),
        ..Default::default()
    }) else {
        return;
    };
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    // A docker-credential-test helper keeping one secret in a file.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let state = dir.path().join("helper-state.json");
    let script = format!(
        r#"#!/bin/sh
case "$1" in
  get) read server; if [ -f {s} ]; then cat {s}; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) cat > {s} ;;
  erase) read server; if [ -f {s} ]; then rm {s}; else echo "credentials not found in native keychain"; exit 1; fi ;;
esac
"#,
        s = state.display()
    );
    let helper = bin.join("docker-credential-test");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Tests in this binary share the environment; only this test changes PATH.
    std::env::set_var("PATH", path);

    write_config(
        dir.path(),
        &format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, reg.host),
    );
    let creds = support::isolated_credentials(dir.path());
    assert_eq!(creds.get(&reg.host).unwrap(), None);
    let where_ = creds
        .store(&reg.host, &Credentials::basic("carol", "helper-pw"))
        .unwrap();
    assert!(where_.contains("docker-credential-test"), "{where_}");
    let config = std::fs::read_to_string(dir.path().join("docker/config.json")).unwrap();
    assert!(
        !config.contains("helper-pw"),
        "the secret went to the helper"
    );

    let remote = support::remote(dir.path());
    rt.block_on(remote.client(&reg.host).unwrap().ping())
        .unwrap();
    assert!(creds.erase(&reg.host).unwrap());
    assert!(!state.exists());
}

#[test]
fn tls_registry_is_trusted_through_a_certs_d_ca() {
    let (ca_pem, cert_pem, key_pem) = support::ca_signed(&["localhost", "127.0.0.1"]);
    let tls_dir = tempfile::tempdir().unwrap();
    let cert = tls_dir.path().join("server.crt");
    let key = tls_dir.path().join("server.key");
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let Some(reg) = support::RegistryServer::start_with(RegistryConfig {
        tls: Some((cert, key)),
        ..Default::default()
    }) else {
        return;
    };
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let src = store(dir.path());
    let desc = make_image(&src, "tls", 1, Compression::Gzip).unwrap();
    // Use a non-loopback-looking name via the insecure list off: the host is loopback, so
    // kiln tries HTTPS first; with the CA in certs.d it must verify and use it.
    let certs_d = dir.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(&reg.host)).unwrap();
    std::fs::write(certs_d.join(&reg.host).join("ca.crt"), ca_pem).unwrap();
    let mut opts = RemoteOptions::isolated(CredentialSources {
        registry_auth_file: None,
        docker_config: dir.path().join("none.json"),
        containers_auth: None,
    });
    opts.transport.cert_dirs = vec![certs_d];
    let remote = Remote::new(opts);
    let dest = Reference::parse(&format!("{}/tls/app:1", reg.host)).unwrap();
    let pushed = rt
        .block_on(push::push(&remote, &src, &desc, &dest))
        .unwrap();
    assert_eq!(pushed.digest.as_ref(), Some(&desc.digest));

    // Without the CA, the TLS registry is not silently trusted.
    let untrusted = support::remote(dir.path());
    assert!(rt
        .block_on(registry::remote::ops::inspect(
            &untrusted,
            &dest,
            &Platform::host()
        ))
        .is_err());
}

#[test]
fn blob_redirects_to_another_host_do_not_carry_credentials() {
    let Some(reg) = support::RegistryServer::start_with(RegistryConfig {
        htpasswd: Some(("dave".into(), "redirect-pw".into())),
        ..Default::default()
    }) else {
        return;
    };
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let src = store(dir.path());
    let desc = make_image(&src, "redirect", 1, Compression::Gzip).unwrap();
    let creds = support::isolated_credentials(dir.path());
    let front = support::proxy::FaultProxy::start(&rt, &reg.host);
    // "Object storage": another origin that serves blobs without needing credentials.
    let storage = support::proxy::FaultProxy::start(&rt, &reg.host);
    creds
        .store(&front.host, &Credentials::basic("dave", "redirect-pw"))
        .unwrap();
    let remote = support::remote(dir.path());
    let r = Reference::parse(&format!("{}/redir/app:1", front.host)).unwrap();
    rt.block_on(push::push(&remote, &src, &desc, &r)).unwrap();

    front.set(|f| f.redirect_blobs_to = Some(storage.host.clone()));
    let dst_dir = tempfile::tempdir().unwrap();
    // The storage origin forwards to the htpasswd registry without credentials, so the
    // download is refused there; what matters is that kiln did not send them.
    let _ = rt.block_on(registry::remote::pull::pull(
        &remote,
        &store(dst_dir.path()),
        &r,
        &Platform::host(),
    ));
    let front_log = front.log();
    assert!(
        front_log
            .iter()
            .any(|l| l.starts_with("GET /v2/redir/app/blobs/") && l.ends_with(" auth")),
        "the registry itself gets credentials: {front_log:#?}"
    );
    let storage_log = storage.log();
    assert!(!storage_log.is_empty(), "the redirect was followed");
    assert!(
        storage_log.iter().all(|l| !l.ends_with(" auth")),
        "no Authorization header to another host: {storage_log:#?}"
    );
}
