package sockstat_test

import (
	"fmt"
	"strings"

	"github.com/guard-xmpp/guard/internal/sockstat"
)

func ExampleParse() {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1466 0100007F:D2F0 08 00000000:00000000 00:00000000 00000000     0        0 48211 1 0000000000000000 20 4 30 10 -1
`
	entries, err := sockstat.Parse(strings.NewReader(table))
	if err != nil {
		panic(err)
	}
	for _, e := range sockstat.InState(sockstat.Filter(entries, 5222), sockstat.CloseWait) {
		fmt.Println(e.State, e.Local, e.Remote)
	}
	// Output: CLOSE_WAIT 127.0.0.1:5222 127.0.0.1:54000
}
