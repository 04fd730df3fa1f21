//! One story, told against every backend: the fakes and a real LNbits.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lightning_invoice::Currency;
use rayo::backends::{
    AnyBackend, BudaBackend, ClnBackend, DevBackend, Identity, InvoiceDescription, InvoiceRequest,
    InvoiceState, LnbitsBackend, LndBackend, NwcBackend, NwcUri, PhoenixdBackend, RelayPool,
};
use rayo::clock::SystemClock;
use rayo::domain::{Hash32, Msat, Secret};
use rayo::invoices::{check_invoice, Expected};
use rayo::net::Reach;

use crate::support::fake_buda::FakeBuda;
use crate::support::fake_cln::FakeCln;
use crate::support::fake_lnd::FakeLnd;
use crate::support::fake_phoenixd::FakePhoenixd;
use crate::support::lnbits;
use crate::support::nwc::{FakeNwcWallet, NostrRelay, WalletSetup};

type Settle = Box<dyn Fn(String, String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A backend, and how to pay one of its invoices for real (or `None`: it cannot be paid).
struct Upstream {
    backend: AnyBackend,
    pay: Option<Settle>,
}

fn settle_with<F: Fn(&str, &str) + Send + Sync + 'static>(f: F) -> Option<Settle> {
    let f = Arc::new(f);
    Some(Box::new(move |bolt11, hash| {
        let f = f.clone();
        Box::pin(async move { f(&bolt11, &hash) })
    }))
}

async fn story(upstream: Upstream) {
    let backend = upstream.backend.as_ref();
    let caps = backend.capabilities().clone();
    let kind = backend.kind();
    let identity = backend
        .identity()
        .await
        .unwrap_or_else(|e| panic!("{kind}: identity: {e}"));
    match kind {
        "buda" => assert_eq!(
            identity,
            Identity::default(),
            "Buda's API offers no identity we know of"
        ),
        "nwc" => {
            assert!(
                identity
                    .name
                    .as_deref()
                    .is_some_and(|i| i.contains("fake wallet")),
                "{kind}: {identity:?}"
            );
            assert_eq!(
                identity.node_id, None,
                "an NWC wallet's key is not its signer's"
            );
        }
        "lnbits" => {
            assert!(
                identity
                    .name
                    .as_deref()
                    .is_some_and(|i| i.contains("payee")),
                "{kind}: {identity:?}"
            );
            assert_eq!(identity.node_id, None, "LNbits does not name its node");
        }
        _ => assert!(
            identity.node_id.is_some(),
            "{kind} names the key its node signs with: {identity:?}"
        ),
    }
    let metadata = r#"[["text/plain","contract"]]"#;
    let hash = Hash32::sha256(metadata.as_bytes());
    let description = if caps.description_hash {
        InvoiceDescription::Hash {
            hash,
            text: Cow::Borrowed(metadata),
        }
    } else {
        InvoiceDescription::Memo(Cow::Borrowed("contract"))
    };
    let amount = Msat::from_msat(21_000);
    let request = InvoiceRequest {
        amount,
        description,
        expiry: Duration::from_secs(600),
        label: "rayo:contract:1",
    };
    let created = backend
        .create_invoice(request)
        .await
        .unwrap_or_else(|e| panic!("{kind}: create: {e}"));

    let expected = Expected {
        amount,
        description_hash: caps.description_hash.then_some(hash),
        memo: (!caps.description_hash).then_some("contract"),
        network: caps.network.clone(),
        payment_hash: created.payment_hash,
        node: identity.node_id,
        now: SystemTime::now(),
    };
    let checked = check_invoice(&created.bolt11, &expected)
        .unwrap_or_else(|e| panic!("{kind}: the invoice fails the check: {e}"));
    if let Some(reported) = created.payment_hash {
        assert_eq!(reported, checked.payment_hash, "{kind}: payment hash");
    }
    let created = Created {
        bolt11: created.bolt11,
        payment_hash: checked.payment_hash,
    };

    let before = backend.lookup_invoice(&created.payment_hash).await.unwrap();
    let unpaid = if caps.lookup_sees_unpaid {
        InvoiceState::Pending
    } else {
        InvoiceState::Unknown
    };
    assert_eq!(before, unpaid, "{kind}: a new invoice");

    if let Some(pay) = upstream.pay {
        pay(created.bolt11.clone(), created.payment_hash.to_hex()).await;
        match backend.lookup_invoice(&created.payment_hash).await.unwrap() {
            InvoiceState::Paid {
                preimage,
                amount_received,
                ..
            } => {
                if let Some(preimage) = preimage {
                    assert_eq!(
                        preimage.payment_hash(),
                        created.payment_hash,
                        "{kind}: preimage"
                    );
                }
                assert_eq!(amount_received, amount, "{kind}: amount received");
            }
            other => panic!("{kind}: expected paid, got {other:?}"),
        }
    }
    let unknown = backend.lookup_invoice(&Hash32([0xee; 32])).await.unwrap();
    assert_eq!(
        unknown,
        InvoiceState::Unknown,
        "{kind}: an invoice it never made"
    );
}

#[tokio::test]
async fn every_backend_tells_the_same_story() {
    let dev = DevBackend::from_seed(
        &[9; 32],
        Arc::new(SystemClock),
        Arc::new(rayo::clock::OsRandom),
    );
    story(Upstream {
        backend: Arc::new(dev),
        pay: None,
    })
    .await;

    let lnd = FakeLnd::start("abcd");
    let backend = LndBackend::new(
        lnd.url.parse().unwrap(),
        Secret::new("abcd"),
        Some(lnd.tls_cert_pem.as_bytes()),
        false,
        Currency::Bitcoin,
    )
    .unwrap();
    story(Upstream {
        backend: Arc::new(backend),
        pay: settle_with(move |_, hash| lnd.settle(hash)),
    })
    .await;

    let cln = FakeCln::start("rune");
    let backend = ClnBackend::new(
        cln.url.parse().unwrap(),
        Secret::new("rune"),
        None,
        Currency::Regtest,
    )
    .unwrap();
    story(Upstream {
        backend: Arc::new(backend),
        pay: settle_with(move |_, hash| cln.settle(hash)),
    })
    .await;

    let phoenixd = FakePhoenixd::start("pw");
    let backend = PhoenixdBackend::new(
        phoenixd.url.parse().unwrap(),
        Secret::new("pw"),
        Currency::Bitcoin,
    )
    .unwrap();
    story(Upstream {
        backend: Arc::new(backend),
        pay: Some(Box::new(move |_, hash| {
            let phoenixd = phoenixd.clone();
            Box::pin(async move { phoenixd.settle(&hash).await })
        })),
    })
    .await;

    let buda = FakeBuda::start("k", "s");
    let backend = BudaBackend::new(
        buda.url.parse().unwrap(),
        Secret::new("k"),
        Secret::new("s"),
        Currency::Bitcoin,
    )
    .unwrap();
    story(Upstream {
        backend: Arc::new(backend),
        pay: settle_with(move |bolt11, _| buda.settle(bolt11, 3)),
    })
    .await;

    if let Some(relay) = NostrRelay::start() {
        if let Some(wallet) = FakeNwcWallet::start(&relay, WalletSetup::default()) {
            let pool = RelayPool::new(Reach::Anywhere);
            let backend = NwcBackend::new(
                NwcUri::parse(&wallet.uri).unwrap(),
                &pool,
                Currency::Regtest,
            );
            let wallet = Arc::new(wallet);
            let payer = wallet.clone();
            story(Upstream {
                backend: Arc::new(backend),
                pay: Some(Box::new(move |_, hash| {
                    let wallet = payer.clone();
                    Box::pin(async move { wallet.settle(&hash, true).await })
                })),
            })
            .await;
            drop(wallet);
        }
    }

    let Some(real) = lnbits::start().await else {
        return;
    };
    let real = Arc::new(real);
    let backend = LnbitsBackend::new(
        real.url.parse().unwrap(),
        Secret::new(real.payee_invoice_key.clone()),
        Currency::Bitcoin,
    )
    .unwrap();
    let payer = real.clone();
    let pay: Settle = Box::new(move |bolt11, _| {
        let payer = payer.clone();
        Box::pin(async move {
            payer.pay(&bolt11).await;
        })
    });
    story(Upstream {
        backend: Arc::new(backend),
        pay: Some(pay),
    })
    .await;
}

/// A created invoice with its payment hash as the check read it.
struct Created {
    bolt11: String,
    payment_hash: Hash32,
}
