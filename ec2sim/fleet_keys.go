package ec2sim

// The fleet's key pairs, launch templates and trails, and its instances'
// key names and instance profiles (see fleet.go for the rest).

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FleetKeyPair is an EC2 key pair. YAML keys: name, id, public_key, tags.
// PublicKey is an OpenSSH authorized_keys line (ssh-rsa or ssh-ed25519);
// empty means an ed25519 key the simulator makes (its private half is
// not kept, as in EC2).
type FleetKeyPair struct {
	Name      string
	ID        string
	PublicKey string
	Tags      map[string]string
	pos
}

// FleetLaunchTemplate is a launch template. YAML keys: id, name, tags,
// default_version, versions. Each version is a FleetLaunchTemplateVersion;
// DefaultVersion 0 means 1.
type FleetLaunchTemplate struct {
	ID             string
	Name           string
	Tags           map[string]string
	DefaultVersion int64
	Versions       []FleetLaunchTemplateVersion
	pos
}

// FleetLaunchTemplateVersion is one version's data. YAML keys: key_name,
// image, type, security_groups (IDs, as the template stores them),
// instance_profile (an ARN or a name, stored as given, as EC2 stores
// LaunchTemplateData.IamInstanceProfile), description.
type FleetLaunchTemplateVersion struct {
	KeyName         string
	Image           string
	Type            string
	SecurityGroups  []string
	InstanceProfile string
	Description     string
	pos
}

// FleetTrail is a CloudTrail trail of the account. YAML keys: name,
// home_region, multi_region, management_events (default true),
// read_write (All, ReadOnly or WriteOnly; default All), advanced. With
// advanced its selectors are advanced event selectors (eventCategory =
// Management, and readOnly when read_write is not All); otherwise one
// basic selector. management_events false leaves a selector for S3 data
// events only.
type FleetTrail struct {
	Name             string
	HomeRegion       string
	MultiRegion      bool
	ManagementEvents *bool
	ReadWrite        string
	Advanced         bool
	pos
}

func decodeKeyPairs(r *FleetRegion) decodeFunc {
	return func(n *yaml.Node, path string) error {
		return decodeSeq(n, path, func(n *yaml.Node, path string) error {
			k := FleetKeyPair{pos: pos{line: n.Line, fields: map[string]int{}}}
			err := decodeMapping(n, path, k.fields, map[string]decodeFunc{
				"name": scalar(&k.Name), "id": scalar(&k.ID), "public_key": scalar(&k.PublicKey), "tags": scalar(&k.Tags),
			})
			r.KeyPairs = append(r.KeyPairs, k)
			return err
		})
	}
}

func decodeLaunchTemplates(r *FleetRegion) decodeFunc {
	return func(n *yaml.Node, path string) error {
		return decodeSeq(n, path, func(n *yaml.Node, path string) error {
			lt := FleetLaunchTemplate{pos: pos{line: n.Line, fields: map[string]int{}}}
			err := decodeMapping(n, path, lt.fields, map[string]decodeFunc{
				"id": scalar(&lt.ID), "name": scalar(&lt.Name), "tags": scalar(&lt.Tags),
				"default_version": scalar(&lt.DefaultVersion),
				"versions": func(n *yaml.Node, path string) error {
					return decodeSeq(n, path, func(n *yaml.Node, path string) error {
						v := FleetLaunchTemplateVersion{pos: pos{line: n.Line, fields: map[string]int{}}}
						err := decodeMapping(n, path, v.fields, map[string]decodeFunc{
							"key_name": scalar(&v.KeyName), "image": scalar(&v.Image), "type": scalar(&v.Type),
							"security_groups": scalar(&v.SecurityGroups), "instance_profile": scalar(&v.InstanceProfile),
							"description": scalar(&v.Description),
						})
						lt.Versions = append(lt.Versions, v)
						return err
					})
				},
			})
			r.LaunchTemplates = append(r.LaunchTemplates, lt)
			return err
		})
	}
}

func decodeTrails(f *Fleet) decodeFunc {
	return func(n *yaml.Node, path string) error {
		return decodeSeq(n, path, func(n *yaml.Node, path string) error {
			t := FleetTrail{pos: pos{line: n.Line, fields: map[string]int{}}}
			err := decodeMapping(n, path, t.fields, map[string]decodeFunc{
				"name": scalar(&t.Name), "home_region": scalar(&t.HomeRegion), "multi_region": scalar(&t.MultiRegion),
				"management_events": scalar(&t.ManagementEvents), "read_write": scalar(&t.ReadWrite), "advanced": scalar(&t.Advanced),
			})
			f.Trails = append(f.Trails, t)
			return err
		})
	}
}

// keysPlan is a region's checked key pairs and launch templates.
type keysPlan struct {
	keyPairs  []keyPairPlan
	templates []FleetLaunchTemplate
}

type keyPairPlan struct {
	FleetKeyPair
	path        string
	kt, pub, fp string // "" when the simulator makes the key
}

// checkRegionKeys validates a region's key pairs and launch templates.
func checkRegionKeys(fr FleetRegion, rpath string, claim claimFunc) (keysPlan, error) {
	var kp keysPlan
	names := map[string]string{}
	for i, k := range fr.KeyPairs {
		path := fmt.Sprintf("%s.key_pairs[%d]", rpath, i)
		if k.Name == "" || len(k.Name) > maxKeyNameLen {
			return kp, fleetErr(k.lineOf("name"), path+".name", "a key pair needs a name of 1 to %d characters", maxKeyNameLen)
		}
		if prev, ok := names[k.Name]; ok {
			return kp, fleetErr(k.lineOf("name"), path+".name", "duplicate key pair name %q (also %s)", k.Name, prev)
		}
		names[k.Name] = path
		if k.ID != "" {
			if !validID(k.ID, "key") {
				return kp, fleetErr(k.lineOf("id"), path+".id", "%q is not a key pair ID (key- and 8 or 17 hex digits)", k.ID)
			}
			if err := claim(k.ID, path, k.lineOf("id")); err != nil {
				return kp, err
			}
		}
		p := keyPairPlan{FleetKeyPair: k, path: path}
		if k.PublicKey != "" {
			kt, pub, fp, aerr := parseAuthorizedKey(k.PublicKey)
			if aerr != nil {
				return kp, fleetErr(k.lineOf("public_key"), path+".public_key", "want an OpenSSH public key line (ssh-ed25519 or ssh-rsa): %s", aerr.Message)
			}
			p.kt, p.pub, p.fp = kt, pub, fp
		}
		if err := checkFleetTags(k.Tags, path, k.pos); err != nil {
			return kp, err
		}
		kp.keyPairs = append(kp.keyPairs, p)
	}
	ltNames := map[string]string{}
	for i, lt := range fr.LaunchTemplates {
		path := fmt.Sprintf("%s.launch_templates[%d]", rpath, i)
		if !ltNameRE.MatchString(lt.Name) {
			return kp, fleetErr(lt.lineOf("name"), path+".name", "%q is not a launch template name (3 to 128 letters, digits and ( ) . - / _)", lt.Name)
		}
		if prev, ok := ltNames[lt.Name]; ok {
			return kp, fleetErr(lt.lineOf("name"), path+".name", "duplicate launch template name %q (also %s)", lt.Name, prev)
		}
		ltNames[lt.Name] = path
		if lt.ID != "" {
			if !validID(lt.ID, "lt") {
				return kp, fleetErr(lt.lineOf("id"), path+".id", "%q is not a launch template ID (lt- and 8 or 17 hex digits)", lt.ID)
			}
			if err := claim(lt.ID, path, lt.lineOf("id")); err != nil {
				return kp, err
			}
		}
		if len(lt.Versions) == 0 {
			return kp, fleetErr(lt.line, path+".versions", "a launch template needs at least one version")
		}
		if lt.DefaultVersion == 0 {
			lt.DefaultVersion = 1
		}
		if lt.DefaultVersion < 1 || lt.DefaultVersion > int64(len(lt.Versions)) {
			return kp, fleetErr(lt.lineOf("default_version"), path+".default_version", "version %d does not exist (want 1 to %d)", lt.DefaultVersion, len(lt.Versions))
		}
		for j, v := range lt.Versions {
			vpath := fmt.Sprintf("%s.versions[%d]", path, j)
			if v.Image != "" && !validID(v.Image, "ami") {
				return kp, fleetErr(v.lineOf("image"), vpath+".image", "%q is not an AMI ID (ami- and 8 or 17 hex digits)", v.Image)
			}
			for _, g := range v.SecurityGroups {
				if !validID(g, "sg") {
					return kp, fleetErr(v.lineOf("security_groups"), vpath+".security_groups", "%q is not a security group ID (a template stores IDs)", g)
				}
			}
			if err := checkProfileRef(v.InstanceProfile, vpath+".instance_profile", v.lineOf("instance_profile")); err != nil {
				return kp, err
			}
		}
		if err := checkFleetTags(lt.Tags, path, lt.pos); err != nil {
			return kp, err
		}
		kp.templates = append(kp.templates, lt)
	}
	return kp, nil
}

// checkProfileRef validates an instance profile given as an ARN or a name.
func checkProfileRef(ref, path string, line int) error {
	if ref == "" {
		return nil
	}
	if strings.HasPrefix(ref, "arn:") {
		if !profileARNRE.MatchString(ref) {
			return fleetErr(line, path, "%q is not an instance profile ARN (arn:aws:iam::ACCOUNT:instance-profile/NAME)", ref)
		}
		return nil
	}
	if !profileNameRE.MatchString(ref) {
		return fleetErr(line, path, "%q is not an instance profile name (1 to 128 letters, digits and +=,.@_-)", ref)
	}
	return nil
}

// checkInstanceKeys validates an instance's key_name and instance_profile.
// The key pair need not be in the fleet: EC2 keeps an instance's key name
// after its key pair is deleted.
func checkInstanceKeys(in FleetInstance, path string) error {
	if len(in.KeyName) > maxKeyNameLen {
		return fleetErr(in.lineOf("key_name"), path+".key_name", "a key pair name has at most %d characters", maxKeyNameLen)
	}
	return checkProfileRef(in.InstanceProfile, path+".instance_profile", in.lineOf("instance_profile"))
}

// keysConflicts reports what in p's key pairs and templates clashes with
// reg. Caller holds s.mu.
func keysConflicts(reg *region, p keysPlan) error {
	for _, k := range p.keyPairs {
		if _, ok := reg.keyPairsOf()[k.Name]; ok {
			return fleetErr(k.lineOf("name"), k.path+".name", "key pair %q already exists", k.Name)
		}
		if k.ID != "" && reg.keyPairByID(k.ID) != nil {
			return fleetErr(k.lineOf("id"), k.path+".id", "%s already exists", k.ID)
		}
	}
	for i, lt := range p.templates {
		path := fmt.Sprintf("regions.%s.launch_templates[%d]", reg.name, i)
		if reg.templateByName(lt.Name) != nil {
			return fleetErr(lt.lineOf("name"), path+".name", "launch template %q already exists", lt.Name)
		}
		if _, ok := reg.templatesOf()[lt.ID]; lt.ID != "" && ok {
			return fleetErr(lt.lineOf("id"), path+".id", "%s already exists", lt.ID)
		}
	}
	return nil
}

// applyKeys adds checked key pairs and templates. Caller holds s.mu.
func (s *Server) applyKeys(reg *region, p keysPlan) {
	for _, k := range p.keyPairs {
		kt, pub, fp := k.kt, k.pub, k.fp
		if pub == "" {
			kt, pub, fp = "ed25519", "", ""
			pk, _, err := generateEd25519()
			if err == nil {
				wire := sshEd25519Wire(pk)
				pub, fp = "ssh-ed25519 "+base64.StdEncoding.EncodeToString(wire), sha256Fingerprint(wire)
			}
		}
		kp := s.addKeyPair(reg, k.Name, kt, pub, fp, k.Tags)
		if k.ID != "" {
			kp.id = k.ID
		}
	}
	now := s.now().UTC().Truncate(time.Second)
	for _, lt := range p.templates {
		id := lt.ID
		if id == "" {
			id = s.ids.resource("lt")
		}
		// checkRegionKeys has set an unset DefaultVersion to 1.
		t := &launchTemplate{id: id, name: lt.Name, created: now, seq: s.nextSeq(), tags: cloneTags(lt.Tags), defaultVersion: lt.DefaultVersion}
		for j, v := range lt.Versions {
			d := ltData{KeyName: v.KeyName, ImageID: v.Image, InstanceType: v.Type, GroupIDs: slices.Clone(v.SecurityGroups)}
			if strings.HasPrefix(v.InstanceProfile, "arn:") {
				d.ProfileARN = v.InstanceProfile
			} else {
				d.ProfileName = v.InstanceProfile
			}
			t.versions = append(t.versions, &ltVersion{number: int64(j + 1), description: v.Description, created: now, data: d})
		}
		reg.templatesOf()[id] = t
	}
}

// instanceProfileARN is an instance's profile as the fleet gives it (an
// ARN or a name), as an ARN; "" for none.
func (s *Server) instanceProfileARN(ref string) string {
	if ref == "" {
		return ""
	}
	arn, _ := s.profileARN(ref)
	return arn
}

// checkTrails validates the fleet's trails.
func (f Fleet) checkTrails() error {
	names := map[string]string{}
	for i, t := range f.Trails {
		path := fmt.Sprintf("trails[%d]", i)
		if !trailNameRE.MatchString(t.Name) {
			return fleetErr(t.lineOf("name"), path+".name", "%q is not a trail name (3 to 128 letters, digits, . _ -, starting and ending with a letter or digit)", t.Name)
		}
		if prev, ok := names[t.Name]; ok {
			return fleetErr(t.lineOf("name"), path+".name", "duplicate trail name %q (also %s)", t.Name, prev)
		}
		names[t.Name] = path
		if strings.TrimSpace(t.HomeRegion) == "" {
			return fleetErr(t.line, path+".home_region", "a trail needs its home region")
		}
		switch t.ReadWrite {
		case "", "All", "ReadOnly", "WriteOnly":
		default:
			return fleetErr(t.lineOf("read_write"), path+".read_write", "unknown %q (want All, ReadOnly or WriteOnly)", t.ReadWrite)
		}
	}
	return nil
}

// trailsConflicts reports a fleet trail whose name the account has.
// Caller holds s.mu.
func (s *Server) trailsConflicts(f Fleet) error {
	for i, t := range f.Trails {
		if _, ok := s.trailsLocked()[t.Name]; ok {
			return fleetErr(t.lineOf("name"), fmt.Sprintf("trails[%d].name", i), "trail %q already exists", t.Name)
		}
	}
	return nil
}

// applyTrails adds checked trails. Caller holds s.mu.
func (s *Server) applyTrails(f Fleet) {
	for _, ft := range f.Trails {
		rw := ft.ReadWrite
		if rw == "" {
			rw = "All"
		}
		mgmt := ft.ManagementEvents == nil || *ft.ManagementEvents
		t := &trailConfig{name: ft.Name, homeRegion: ft.HomeRegion, s3Bucket: "ec2sim-trail-" + s.accountID(),
			multiRegion: ft.MultiRegion, includeGlobal: true, seq: s.nextSeq(), custom: true}
		switch {
		case ft.Advanced && mgmt:
			fs := []FieldSelector{{Field: "eventCategory", Equals: []string{"Management"}}}
			if rw != "All" {
				fs = append(fs, FieldSelector{Field: "readOnly", Equals: []string{fmt.Sprint(rw == "ReadOnly")}})
			}
			t.advanced = []AdvancedEventSelector{{Name: "Management events", FieldSelectors: fs}}
		case ft.Advanced:
			t.advanced = []AdvancedEventSelector{{Name: "S3 data events", FieldSelectors: []FieldSelector{
				{Field: "eventCategory", Equals: []string{"Data"}}, {Field: "resources.type", Equals: []string{"AWS::S3::Object"}}}}}
		default:
			sel := EventSelector{ReadWriteType: rw, IncludeManagementEvents: mgmt, DataResources: []DataResource{}, ExcludeManagementEventSources: []string{}}
			if !mgmt {
				sel.DataResources = []DataResource{{Type: "AWS::S3::Object", Values: []string{"arn:aws:s3"}}}
			}
			t.basic = []EventSelector{sel}
		}
		s.trailsLocked()[t.name] = t
	}
}
