//! Ports from the OS, never "find a free port, then bind": a `ReservedPort` is bound (so
//! nothing else can take it) but not listening (so connections are refused, like a server that
//! is down), until it is made to listen here or handed to a rayo process as its socket.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct ReservedPort {
    socket: OwnedFd,
    port: u16,
}

impl ReservedPort {
    /// A port the OS picks.
    pub fn new() -> Self {
        Self::bind(0).expect("reserve a port")
    }

    /// `port` again, once whoever held it is gone.
    pub fn again(port: u16) -> Self {
        Self::bind(port).unwrap_or_else(|e| panic!("port {port} is taken: {e}"))
    }

    fn bind(port: u16) -> std::io::Result<Self> {
        // SAFETY: plain socket calls on a descriptor this function owns from creation.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let socket = OwnedFd::from_raw_fd(fd);
            let one: libc::c_int = 1;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            let mut address: libc::sockaddr_in = std::mem::zeroed();
            address.sin_family = libc::AF_INET as libc::sa_family_t;
            address.sin_port = port.to_be();
            address.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
            let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(fd, (&address as *const libc::sockaddr_in).cast(), length) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut bound: libc::sockaddr_in = std::mem::zeroed();
            let mut length = length;
            if libc::getsockname(
                fd,
                (&mut bound as *mut libc::sockaddr_in).cast(),
                &mut length,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(Self {
                socket,
                port: u16::from_be(bound.sin_port),
            })
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port)
    }

    /// Starts accepting connections here, in this process.
    pub fn listen(self) -> TcpListener {
        // SAFETY: the descriptor is a bound socket this value owns; it is handed on whole.
        unsafe {
            libc::listen(self.socket.as_raw_fd(), 1024);
            TcpListener::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(self.socket))
        }
    }

    /// The socket, for a child process to listen on (see `binary::Server`).
    pub fn into_socket(self) -> OwnedFd {
        self.socket
    }
}

impl Default for ReservedPort {
    fn default() -> Self {
        Self::new()
    }
}
