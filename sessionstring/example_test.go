package sessionstring_test

import (
	"fmt"
	"net/netip"

	"github.com/tgsession/redisstore/sessionstring"
)

func ExampleEncode() {
	key := make([]byte, 256) // the MTProto auth key (secret)
	str, err := sessionstring.Encode(sessionstring.Session{DCID: 2, APIID: 12345, AuthKey: key, UserID: 777000123})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(str), str[:12])

	_, err = sessionstring.Encode(sessionstring.Session{DCID: 2, AuthKey: key}) // before login
	fmt.Println(err)
	// Output:
	// 362 AgAAMDkAAAAA
	// sessionstring: session is incomplete: a Hydrogram string needs api_id, user_id
}

func ExampleDecode() {
	key := make([]byte, 256)
	legacy, _ := sessionstring.EncodePyrogramLegacy(sessionstring.Session{DCID: 2, AuthKey: key, UserID: 777000123})
	telethon, _ := sessionstring.EncodeTelethon(sessionstring.Session{DCID: 2, AuthKey: key, Addr: netip.MustParseAddrPort("149.154.167.51:443")})

	for _, str := range []string{legacy, "\n" + telethon + "\n"} {
		s, err := sessionstring.Decode(str)
		if err != nil {
			panic(err)
		}
		fmt.Println(len(str), s) // printing never shows the key
	}
	_, err := sessionstring.Decode("not a session")
	fmt.Println(err)
	// Output:
	// 351 sessionstring.Session{From:pyrogram-legacy-32 DCID:2 APIID:absent TestMode:false AuthKey:(256 bytes) UserID:777000123 IsBot:false}
	// 355 sessionstring.Session{From:telethon-v1 DCID:2 APIID:absent TestMode:absent AuthKey:(256 bytes) UserID:absent IsBot:absent Addr:149.154.167.51:443}
	// sessionstring: invalid session string: 11 characters after removing whitespace and padding; accepted: 362 characters (Hydrogram, Pyrogram >= 2.0), 351 or 356 (legacy Pyrogram), 353 or 369 (Telethon v1)
}
