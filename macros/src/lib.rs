//! `#[faultline::test]`: an `async fn` test body over a `World`, run over
//! many seeds of faultline's deterministic simulator as an ordinary
//! `#[test]`; built with `RUSTFLAGS="--cfg faultline_shuttle"` or `"--cfg
//! faultline_loom"`, the same function runs under shuttle or loom instead
//! (the expansion names only `faultline::check::{Check, PolicySpec}`, which
//! each build provides; see faultline's `docs/guide.md`, "One body, three
//! checkers", for what each argument means there).
//!
//! ```ignore
//! #[faultline::test]
//! async fn counter_is_exact(world: faultline::World) { /* .. */ }
//!
//! #[faultline::test(seeds = 500, policy = "pct")]
//! async fn under_pct(world: faultline::World) { /* .. */ }
//! ```
//!
//! Arguments (each optional; each maps to a `faultline::check::Check`
//! builder call, and an argument beats the `FAULTLINE_*` environment):
//! `seeds = N` (seeds `0..N`) or `seeds = "A..B"`, `policy = "random" |
//! "pct" | "pct:D"`, `memory_limit = BYTES`, `spurious_wakes = PPM`,
//! `threads_max = N`, `steps_max = N`, `time_max_s = S`, `shrink_time_s =
//! S`, `check_determinism = true`, `sync_switch = true` (synchronous
//! sections are switch points: `Check::sync_switch`).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ItemFn, Lit, MetaNameValue, Token};

/// Runs an `async fn(world: World)` over many seeds of the simulator as a
/// `#[test]`. See the crate docs for the arguments.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

const ARGS: &str = "seeds, policy, memory_limit, spurious_wakes, threads_max, steps_max, \
                    time_max_s, shrink_time_s, check_determinism, sync_switch";

fn expand(args: Tokens, item: Tokens) -> syn::Result<Tokens> {
    let f: ItemFn = syn::parse2(item)?;
    if f.sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            f.sig.fn_token,
            "#[faultline::test] needs an `async fn name(world: World)`",
        ));
    }
    if f.sig.inputs.len() != 1 {
        return Err(syn::Error::new_spanned(
            &f.sig.inputs,
            "#[faultline::test] takes exactly one argument: the `World`",
        ));
    }
    let parser = Punctuated::<MetaNameValue, Token![,]>::parse_terminated;
    let mut calls = Vec::new();
    for nv in parser.parse2(args)? {
        calls.push(call(&nv)?);
    }
    let name = &f.sig.ident;
    let attrs = &f.attrs;
    let vis = &f.vis;
    let mut inner = f.clone();
    inner.attrs.clear();
    inner.vis = syn::Visibility::Inherited;
    Ok(quote! {
        #[test]
        #(#attrs)*
        #vis fn #name() {
            #inner
            ::faultline::check::Check::new()
                .crate_name(env!("CARGO_PKG_NAME"))
                #(#calls)*
                .run(#name);
        }
    })
}

/// The builder call of one `key = value` argument.
fn call(nv: &MetaNameValue) -> syn::Result<Tokens> {
    let key = nv
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    let v = &nv.value;
    let err = |m: String| syn::Error::new_spanned(nv, m);
    Ok(match key.as_str() {
        "seeds" => match lit(v) {
            Some(Lit::Int(n)) => quote! { .seeds(0..#n) },
            Some(Lit::Str(s)) => {
                let (a, b) = s
                    .value()
                    .split_once("..")
                    .and_then(|(a, b)| {
                        Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?))
                    })
                    .filter(|(a, b)| a < b)
                    .ok_or_else(|| err("seeds = N, or seeds = \"A..B\" with A < B".into()))?;
                quote! { .seeds(#a..#b) }
            }
            _ => return Err(err("seeds = N, or seeds = \"A..B\"".into())),
        },
        "policy" => match lit(v) {
            Some(Lit::Str(s)) => {
                let text = s.value();
                let depth = match text.trim() {
                    "random" => None,
                    "pct" => Some(3u32),
                    t => Some(
                        t.strip_prefix("pct:")
                            .and_then(|d| d.parse::<u32>().ok())
                            .filter(|&d| d >= 1)
                            .ok_or_else(|| {
                                err("policy = \"random\", \"pct\" or \"pct:D\" (D >= 1)".into())
                            })?,
                    ),
                };
                match depth {
                    None => quote! { .policy(::faultline::check::PolicySpec::Random) },
                    Some(d) => quote! { .policy(::faultline::check::PolicySpec::pct(#d)) },
                }
            }
            _ => return Err(err("policy = \"random\", \"pct\" or \"pct:D\"".into())),
        },
        "memory_limit" => quote! { .memory_limit((#v) as u64) },
        "spurious_wakes" => quote! { .spurious_wakes((#v) as u32) },
        "threads_max" => quote! { .threads_max((#v) as usize) },
        "steps_max" => quote! { .steps_max((#v) as u64) },
        "time_max_s" => quote! { .time_max(::std::time::Duration::from_secs((#v) as u64)) },
        "shrink_time_s" => {
            quote! { .shrink_time(::std::time::Duration::from_secs((#v) as u64)) }
        }
        "check_determinism" => quote! { .check_determinism(#v) },
        "sync_switch" => quote! { .sync_switch(#v) },
        _ => {
            return Err(syn::Error::new(
                nv.path
                    .get_ident()
                    .map_or_else(Span::call_site, syn::Ident::span),
                format!("unknown argument `{key}` (known: {ARGS})"),
            ))
        }
    })
}

fn lit(e: &Expr) -> Option<&Lit> {
    match e {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        _ => None,
    }
}
