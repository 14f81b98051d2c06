package provider

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// errPrivateAddress is the error of a fetch refused because it would reach an internal address.
var errPrivateAddress = errors.New("the address is loopback, private, link-local or unspecified, which Latchkey does not fetch from")

// publicOnly is a net.Dialer Control function that refuses connections to
// addresses inside the provider's own networks. Clients register the URLs
// Latchkey fetches (jwks_uri, request_uri), and with open registration
// anyone can, so without it those fetches could probe internal services.
// It checks the address actually dialled, after name resolution, so a DNS
// name that resolves inside cannot pass.
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dialing %q: %w", address, err)
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || sharedAddressSpace.Contains(ip) {
		return fmt.Errorf("dialing %s: %w", ip, errPrivateAddress)
	}
	return nil
}

// sharedAddressSpace is 100.64.0.0/10 (RFC 6598), which carrier and cloud
// networks use internally.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// outboundTransport returns the transport of the fetches clients' metadata
// causes: no proxy, timeouts, and unless allowPrivate, public addresses
// only.
func outboundTransport(timeout time.Duration, allowPrivate bool) *http.Transport {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = publicOnly
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       30 * time.Second,
	}
}
