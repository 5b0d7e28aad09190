//! The sink's endpoint: `http://host:port`, `https://host:port`,
//! `host:port` or a bare `host`.
//!
//! Without a scheme the endpoint is plain (insecure) HTTP. A missing port is
//! the default of the scheme: [`DEFAULT_PLAIN_PORT`] for `http`,
//! [`DEFAULT_TLS_PORT`] for `https`. Surrounding whitespace and one trailing
//! `/` are ignored; anything else that does not fit is an
//! [`EndpointError`] naming what is wrong. An IPv6 host is written in
//! brackets (`[::1]:8123`). [`Endpoint`]'s `Display` is the canonical form
//! (`scheme://host:port`), and parsing it gives the same endpoint back.

/// The default port of plain HTTP (the column store's HTTP port).
pub const DEFAULT_PLAIN_PORT: u16 = 8123;
/// The default port of HTTPS.
pub const DEFAULT_TLS_PORT: u16 = 8443;

/// Plain or TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    /// `http://` (the default when no scheme is given).
    Http,
    /// `https://`.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => DEFAULT_PLAIN_PORT,
            Scheme::Https => DEFAULT_TLS_PORT,
        }
    }
}

/// A parsed endpoint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// Plain or TLS.
    pub scheme: Scheme,
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// Port, `1..=65535`.
    pub port: u16,
}

/// Why an endpoint string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointError {
    /// The string is empty (or only whitespace).
    Empty,
    /// The scheme is neither `http` nor `https`.
    UnknownScheme(String),
    /// There is no host before the port (or after the scheme).
    EmptyHost,
    /// The host holds a character a host name cannot hold.
    BadHost(String),
    /// The port is empty or not a decimal number.
    BadPort(String),
    /// The port is a number outside `1..=65535`.
    PortOutOfRange(String),
    /// Something follows the port (a path, a query).
    UnexpectedPath(String),
}

impl std::fmt::Display for EndpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndpointError::Empty => f.write_str("endpoint is empty"),
            EndpointError::UnknownScheme(s) => {
                write!(f, "unknown scheme {s:?} (use http:// or https://)")
            }
            EndpointError::EmptyHost => f.write_str("endpoint has no host"),
            EndpointError::BadHost(h) => write!(f, "invalid host {h:?}"),
            EndpointError::BadPort(p) => write!(f, "port {p:?} is not a number"),
            EndpointError::PortOutOfRange(p) => write!(f, "port {p} is outside 1..=65535"),
            EndpointError::UnexpectedPath(p) => {
                write!(f, "unexpected {p:?} after the port (no path allowed)")
            }
        }
    }
}

impl std::error::Error for EndpointError {}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.scheme.as_str();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(s)
    }
}

impl Endpoint {
    /// Parses `http://host:port`, `https://host:port`, `host:port` or
    /// `host` (each scheme also without a port).
    ///
    /// # Errors
    /// [`EndpointError`] naming the first thing that is wrong.
    pub fn parse(input: &str) -> Result<Endpoint, EndpointError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(EndpointError::Empty);
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((name, rest)) => (parse_scheme(name)?, rest),
            None => (Scheme::Http, s),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = split_host_port(rest)?;
        let port = match port {
            None => scheme.default_port(),
            Some(p) => parse_port(p)?,
        };
        Ok(Endpoint {
            scheme,
            host: host.to_string(),
            port,
        })
    }

    /// Whether the endpoint uses TLS.
    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Https
    }
}

fn parse_scheme(name: &str) -> Result<Scheme, EndpointError> {
    match name.to_ascii_lowercase().as_str() {
        "http" => Ok(Scheme::Http),
        "https" => Ok(Scheme::Https),
        _ => Err(EndpointError::UnknownScheme(name.to_string())),
    }
}

/// Splits `host[:port]` or `[v6][:port]`; checks the host.
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), EndpointError> {
    if let Some(p) = rest.find('/') {
        return Err(EndpointError::UnexpectedPath(rest[p..].to_string()));
    }
    if let Some(inner) = rest.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err(EndpointError::BadHost(rest.to_string()));
        };
        check_host(host, true)?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(EndpointError::BadHost(rest.to_string())),
            },
        };
    }
    let (host, port) = match rest.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    check_host(host, false)?;
    Ok((host, port))
}

fn check_host(host: &str, v6: bool) -> Result<(), EndpointError> {
    if host.is_empty() {
        return Err(EndpointError::EmptyHost);
    }
    let ok = |c: char| {
        if v6 {
            c.is_ascii_hexdigit() || c == ':' || c == '.'
        } else {
            c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'
        }
    };
    if host.chars().all(ok) && (!v6 || host.contains(':')) {
        Ok(())
    } else {
        Err(EndpointError::BadHost(host.to_string()))
    }
}

fn parse_port(p: &str) -> Result<u16, EndpointError> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointError::BadPort(p.to_string()));
    }
    match p.parse::<u32>() {
        Ok(n) if (1..=u32::from(u16::MAX)).contains(&n) => Ok(n as u16),
        _ => Err(EndpointError::PortOutOfRange(p.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(scheme: Scheme, host: &str, port: u16) -> Endpoint {
        Endpoint {
            scheme,
            host: host.into(),
            port,
        }
    }

    #[test]
    fn the_four_forms_and_default_ports() {
        let p = Endpoint::parse;
        assert_eq!(p("http://db:9000"), Ok(ep(Scheme::Http, "db", 9000)));
        assert_eq!(p("https://db:9440"), Ok(ep(Scheme::Https, "db", 9440)));
        assert_eq!(p("db:9000"), Ok(ep(Scheme::Http, "db", 9000)));
        assert_eq!(p("db"), Ok(ep(Scheme::Http, "db", DEFAULT_PLAIN_PORT)));
        assert_eq!(
            p("https://db"),
            Ok(ep(Scheme::Https, "db", DEFAULT_TLS_PORT))
        );
        assert_eq!(p(" HTTP://db/ "), Ok(ep(Scheme::Http, "db", 8123)));
        assert_eq!(p("[::1]:7"), Ok(ep(Scheme::Http, "::1", 7)));
    }

    #[test]
    fn clear_errors() {
        let p = Endpoint::parse;
        assert_eq!(p("  "), Err(EndpointError::Empty));
        assert_eq!(
            p("ftp://db"),
            Err(EndpointError::UnknownScheme("ftp".into()))
        );
        assert_eq!(p("http://:80"), Err(EndpointError::EmptyHost));
        assert_eq!(p("db:"), Err(EndpointError::BadPort(String::new())));
        assert_eq!(p("db:8o"), Err(EndpointError::BadPort("8o".into())));
        assert_eq!(p("db:0"), Err(EndpointError::PortOutOfRange("0".into())));
        assert_eq!(
            p("db:65536"),
            Err(EndpointError::PortOutOfRange("65536".into()))
        );
        assert_eq!(p("u@db"), Err(EndpointError::BadHost("u@db".into())));
        assert_eq!(p("db:1/x"), Err(EndpointError::UnexpectedPath("/x".into())));
        assert!(p("db:1:2").is_err());
    }
}
