package ec2sim_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	cryptossh "golang.org/x/crypto/ssh"

	"github.com/latchdev/latch/ec2sim"
)

// CreateKeyPair's material is a usable private key of the type asked for,
// whose public half DescribeKeyPairs shows; a second key of the same name
// is a duplicate; key pairs are per region.
func TestCreateKeyPair(t *testing.T) {
	sim, c := bareSim(t, ec2sim.Options{})
	ctx := t.Context()
	for _, kt := range []types.KeyType{types.KeyTypeEd25519, types.KeyTypeRsa} {
		name := "key-" + string(kt)
		out, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String(name), KeyType: kt,
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeKeyPair, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}}}}})
		if err != nil {
			t.Fatal(err)
		}
		signer, err := cryptossh.ParsePrivateKey([]byte(aws.ToString(out.KeyMaterial)))
		if err != nil {
			t.Fatalf("%s material does not parse: %v\n%s", kt, err, aws.ToString(out.KeyMaterial))
		}
		wantAlgo := map[types.KeyType]string{types.KeyTypeEd25519: cryptossh.KeyAlgoED25519, types.KeyTypeRsa: cryptossh.KeyAlgoRSA}[kt]
		if signer.PublicKey().Type() != wantAlgo || !strings.HasPrefix(aws.ToString(out.KeyPairId), "key-") || aws.ToString(out.KeyFingerprint) == "" {
			t.Errorf("%s: key %s, id %s, fingerprint %q", kt, signer.PublicKey().Type(), aws.ToString(out.KeyPairId), aws.ToString(out.KeyFingerprint))
		}
		desc, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}, IncludePublicKey: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if len(desc.KeyPairs) != 1 {
			t.Fatalf("described %d key pairs", len(desc.KeyPairs))
		}
		k := desc.KeyPairs[0]
		pub := strings.TrimSpace(string(cryptossh.MarshalAuthorizedKey(signer.PublicKey())))
		if aws.ToString(k.PublicKey) != pub || k.KeyType != kt || aws.ToString(k.KeyPairId) != aws.ToString(out.KeyPairId) ||
			aws.ToString(k.KeyFingerprint) != aws.ToString(out.KeyFingerprint) || tagMap(k.Tags)["team"] != "ops" || k.CreateTime == nil {
			t.Errorf("described %+v; want public key %s", k, pub)
		}
		_, err = c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String(name)})
		wantCode(t, err, "InvalidKeyPair.Duplicate")
	}
	// Without IncludePublicKey, no public key.
	desc, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil || len(desc.KeyPairs) != 2 || desc.KeyPairs[0].PublicKey != nil {
		t.Errorf("describe all = %+v, %v", desc, err)
	}
	// Another region has none.
	west := newClient(t, mustStart(t, sim), "eu-west-1")
	if desc, err := west.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{}); err != nil || len(desc.KeyPairs) != 0 {
		t.Errorf("eu-west-1 key pairs = %+v, %v", desc, err)
	}
	_, err = c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("x"), KeyType: "dsa"})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("")})
	wantCode(t, err, "MissingParameter")
}

func TestImportDescribeDeleteKeyPair(t *testing.T) {
	_, c := bareSim(t, ec2sim.Options{})
	ctx := t.Context()
	pk, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := cryptossh.NewPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	line := cryptossh.MarshalAuthorizedKey(sshPub)
	imp, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("laptop"), PublicKeyMaterial: append(line[:len(line)-1], " me@laptop\n"...)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(imp.KeyName) != "laptop" || aws.ToString(imp.KeyFingerprint) == "" {
		t.Errorf("import = %+v", imp)
	}
	_, err = c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("laptop"), PublicKeyMaterial: line})
	wantCode(t, err, "InvalidKeyPair.Duplicate")
	_, err = c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("bad"), PublicKeyMaterial: []byte("ssh-ed25519 AAAA")})
	wantCode(t, err, "InvalidKey.Format")
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})
	_, err = c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("bad"), PublicKeyMaterial: rsaPEM})
	wantCode(t, err, "InvalidKey.Format")
	if _, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("ci"), KeyType: types.KeyTypeEd25519}); err != nil {
		t.Fatal(err)
	}

	desc, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyPairIds: []string{aws.ToString(imp.KeyPairId)}, IncludePublicKey: aws.Bool(true)})
	if err != nil || len(desc.KeyPairs) != 1 || aws.ToString(desc.KeyPairs[0].PublicKey) != strings.TrimSpace(string(line)) {
		t.Errorf("by ID = %+v, %v; want the key without its comment", desc, err)
	}
	desc, err = c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []types.Filter{filter("key-name", "c*")}})
	if err != nil || len(desc.KeyPairs) != 1 || aws.ToString(desc.KeyPairs[0].KeyName) != "ci" {
		t.Errorf("filtered = %+v, %v", desc, err)
	}
	_, err = c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"laptop", "nope"}})
	wantCode(t, err, "InvalidKeyPair.NotFound")
	_, err = c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyPairIds: []string{"key-0123456789abcdef0"}})
	wantCode(t, err, "InvalidKeyPair.NotFound")
	_, err = c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []types.Filter{filter("key-colour", "red")}})
	wantCode(t, err, "InvalidParameterValue")

	// Delete by name, by ID; a name that is gone is not an error, an ID is.
	if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("ci")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("ci")}); err != nil {
		t.Errorf("deleting a missing name: %v, want success as EC2 answers", err)
	}
	del, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyPairId: imp.KeyPairId})
	if err != nil || aws.ToString(del.KeyPairId) != aws.ToString(imp.KeyPairId) {
		t.Errorf("delete by ID = %+v, %v", del, err)
	}
	_, err = c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyPairId: imp.KeyPairId})
	wantCode(t, err, "InvalidKeyPair.NotFound")
	if desc, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{}); err != nil || len(desc.KeyPairs) != 0 {
		t.Errorf("after deletes = %+v, %v", desc, err)
	}
}

// RunInstances takes a key pair that exists and an instance profile by
// name or ARN; DescribeInstances shows both, and filters by them.
func TestInstanceKeyNameAndProfile(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	run := func(key string, profile *types.IamInstanceProfileSpecification) (*ec2.RunInstancesOutput, error) {
		in := &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			IamInstanceProfile: profile}
		if key != "" {
			in.KeyName = aws.String(key)
		}
		return c.RunInstances(ctx, in)
	}
	_, err := run("missing", nil)
	wantCode(t, err, "InvalidKeyPair.NotFound")
	if _, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("deploy"), KeyType: types.KeyTypeEd25519}); err != nil {
		t.Fatal(err)
	}
	byName, err := run("deploy", &types.IamInstanceProfileSpecification{Name: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	const webARN = "arn:aws:iam::123456789012:instance-profile/web"
	if in := byName.Instances[0]; aws.ToString(in.KeyName) != "deploy" || in.IamInstanceProfile == nil ||
		aws.ToString(in.IamInstanceProfile.Arn) != webARN || !strings.HasPrefix(aws.ToString(in.IamInstanceProfile.Id), "AIPA") {
		t.Errorf("run = %+v", in)
	}
	byARN, err := run("", &types.IamInstanceProfileSpecification{Arn: aws.String("arn:aws:iam::123456789012:instance-profile/team/db")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = run("", &types.IamInstanceProfileSpecification{Arn: aws.String("web")})
	wantCode(t, err, "InvalidParameterValue")
	_, err = run("", &types.IamInstanceProfileSpecification{Arn: aws.String(webARN), Name: aws.String("web")})
	wantCode(t, err, "InvalidParameterCombination")

	desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(byName.Instances[0].InstanceId), aws.ToString(byARN.Instances[0].InstanceId)}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range desc.Reservations {
		for _, in := range r.Instances {
			arn := ""
			if in.IamInstanceProfile != nil {
				arn = aws.ToString(in.IamInstanceProfile.Arn)
			}
			got[aws.ToString(in.KeyName)+"|"+arn] = aws.ToString(in.InstanceId)
		}
	}
	if got["deploy|"+webARN] == "" || got["|arn:aws:iam::123456789012:instance-profile/team/db"] == "" {
		t.Errorf("described %v", got)
	}
	desc, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("key-name", "deploy")}})
	if err != nil || len(desc.Reservations) != 1 {
		t.Errorf("key-name filter = %d reservations, %v", len(desc.Reservations), err)
	}
	// The demo fleet's instances have neither.
	desc, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{ec2sim.DemoDB1}})
	if err != nil || desc.Reservations[0].Instances[0].KeyName != nil || desc.Reservations[0].Instances[0].IamInstanceProfile != nil {
		t.Errorf("demo instance = %+v, %v", desc, err)
	}
}
