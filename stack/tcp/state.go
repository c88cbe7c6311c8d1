package tcp

// state is a connection state, RFC 9293 §3.3.2.
type state int

const (
	stateClosed state = iota
	stateListen
	stateSynSent
	stateSynReceived
	stateEstablished
	stateFinWait1
	stateFinWait2
	stateCloseWait
	stateClosing
	stateLastAck
	stateTimeWait
)

var stateNames = [...]string{"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"}

func (s state) String() string { return stateNames[s] }

// synchronized reports the states after the handshake (RFC 9293 §3.5.2).
func (s state) synchronized() bool { return s >= stateEstablished }

// canSend reports whether new data may still be sent.
func (s state) canSend() bool { return s == stateEstablished || s == stateCloseWait }

// canReceive reports whether data may still arrive.
func (s state) canReceive() bool {
	return s == stateEstablished || s == stateFinWait1 || s == stateFinWait2
}
