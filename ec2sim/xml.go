package ec2sim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"maps"
	"slices"
)

// APIVersion is the only EC2 API version the simulator speaks; every SDK
// since 2016 sends it.
const APIVersion = "2016-11-15"

// Namespace is the XML namespace of EC2 responses for [APIVersion].
const Namespace = "http://ec2.amazonaws.com/doc/" + APIVersion + "/"

// meta carries the fields every success response has. Response structs
// embed it; the server fills it in.
type meta struct {
	RequestID string `xml:"requestId"`
}

func (m *meta) setRequestID(id string) { m.RequestID = id }

type response interface{ setRequestID(string) }

// set is an EC2 list: <fooSet><item>…</item></fooSet>. It is always
// written, empty or not, as EC2 does.
type set[T any] struct {
	Items []T `xml:"item"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// tagSet renders tags sorted by key, so responses are stable.
func tagSet(tags map[string]string) set[xmlTag] {
	var s set[xmlTag]
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		s.Items = append(s.Items, xmlTag{Key: k, Value: tags[k]})
	}
	return s
}

type returnResponse struct {
	meta
	Return bool `xml:"return"`
}

// encodeResponse renders a success response: <ActionResponse xmlns=…>
// with the handler's fields inside.
func encodeResponse(action, requestID string, body response) ([]byte, error) {
	body.setRequestID(requestID)
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "    ")
	start := xml.StartElement{Name: xml.Name{Space: Namespace, Local: action + "Response"}}
	if err := enc.EncodeElement(body, start); err != nil {
		return nil, fmt.Errorf("encode %s response: %w", action, err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

type errorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// encodeError renders EC2's error document. Unlike success responses it
// has no namespace and spells the request ID "RequestID".
func encodeError(e *apiError, requestID string) []byte {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	doc := errorResponse{Errors: []xmlError{{Code: e.Code, Message: e.Message}}, RequestID: requestID}
	if err := xml.NewEncoder(&buf).Encode(doc); err != nil {
		// Only strings go in, so this cannot fail; say so loudly if it does.
		panic(fmt.Sprintf("ec2sim: encode error response: %v", err))
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}
