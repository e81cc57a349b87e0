package metabasetest

import (
	"slices"
	"strconv"
)

// ----- JSON shapes -----

// creatorJSON is a hydrated :creator: the user's default columns plus
// common_name, without is_active (src/metabase/notification/api/admin.clj,
// splice-creator-active, explains that the hydration strips it).
func (s *Server) creatorJSONLocked(id int, withActive bool) any {
	u := s.users[id]
	if u == nil {
		return nil
	}
	j := map[string]any{
		"id": u.ID, "email": u.Email, "first_name": optString(u.FirstName), "last_name": optString(u.LastName),
		"common_name": u.json().CommonName, "date_joined": u.DateJoined.UTC().Format(timeLayout),
		"last_login": nil, "is_qbnewb": true, "is_superuser": u.Superuser,
	}
	if withActive {
		j["is_active"] = u.Active
	}
	return j
}

func optInt(id int) any {
	if id == 0 {
		return nil
	}
	return id
}

func (s *Server) userRecipientJSONLocked(id int) map[string]any {
	u := s.users[id]
	return map[string]any{
		"id": u.ID, "email": u.Email, "first_name": optString(u.FirstName), "last_name": optString(u.LastName),
		"common_name": u.json().CommonName,
	}
}

// pulseChannelsJSONLocked renders the channels of a pulse (or of an alert
// before v0.54): one email channel holding user and raw-address recipients,
// and one Slack channel per channel name with details.channel. Archiving
// disables every channel (before-update of :model/Pulse). Only active users
// are listed (pulse.db/active-recipients-for-channels; deactivation also
// deletes the rows, see prunePulseRecipientsLocked); raw addresses come
// first, from details.emails, which is itself never rendered
// (src/metabase/pulse/models/pulse_channel.clj).
func (s *Server) pulseChannelsJSONLocked(pulseID int, userIDs []int, emails, slack []string, archived bool) []any {
	chans := []any{}
	base := func(n int, typ string) map[string]any {
		return map[string]any{
			"id": pulseID*10 + n, "pulse_id": pulseID, "channel_type": typ, "channel_id": nil, "enabled": !archived,
			"schedule_type": "daily", "schedule_hour": 8, "schedule_day": nil, "schedule_frame": nil,
			"created_at": fakeTimestamp, "updated_at": fakeTimestamp,
		}
	}
	if len(userIDs)+len(emails) > 0 {
		c := base(0, "email")
		recips := []any{}
		for _, e := range emails {
			recips = append(recips, map[string]any{"email": e})
		}
		for _, id := range userIDs {
			if s.recipientActiveLocked(id) {
				recips = append(recips, s.userRecipientJSONLocked(id))
			}
		}
		c["details"] = map[string]any{}
		c["recipients"] = recips
		chans = append(chans, c)
	}
	for i, name := range slack {
		c := base(i+1, "slack")
		c["details"] = map[string]any{"channel": name}
		c["recipients"] = []any{}
		chans = append(chans, c)
	}
	return chans
}

// pulseJSONLocked renders a subscription as GET /api/pulse does
// (retrieve-pulses: hydrated :creator, :cards, [:channels :recipients];
// alert columns removed).
func (s *Server) pulseJSONLocked(p *Subscription, canWrite *bool) map[string]any {
	cards := []any{}
	for i, id := range p.CardIDs {
		cards = append(cards, map[string]any{
			"id": id, "name": "Card " + strconv.Itoa(id), "description": nil, "collection_id": nil, "display": "table",
			"include_csv": false, "include_xls": false, "format_rows": true, "pivot_results": false,
			"dashboard_card_id": optInt(p.DashboardID*100 + i), "dashboard_id": optInt(p.DashboardID), "parameter_mappings": nil,
		})
	}
	j := map[string]any{
		"id": p.ID, "name": p.Name, "creator_id": p.CreatorID, "creator": s.creatorJSONLocked(p.CreatorID, false),
		"dashboard_id": optInt(p.DashboardID), "collection_id": nil, "collection_position": nil,
		"archived": p.Archived, "skip_if_empty": p.SkipIfEmpty, "parameters": []any{},
		"created_at": fakeTimestamp, "updated_at": fakeTimestamp, "entity_id": "pulse" + strconv.Itoa(p.ID),
		"cards": cards, "channels": s.pulseChannelsJSONLocked(p.ID, p.UserIDs, p.Emails, p.SlackChannels, p.Archived),
	}
	if canWrite != nil {
		j["can_write"] = *canWrite
	}
	return j
}

// legacyAlertJSONLocked renders an alert before v0.54: a pulse with its
// alert columns and a single :card instead of :cards
// (src/metabase/models/pulse.clj, notification->alert).
func (s *Server) legacyAlertJSONLocked(a *Alert, canWrite bool) map[string]any {
	return map[string]any{
		"id": a.ID, "name": nil, "creator_id": optInt(a.CreatorID), "creator": s.creatorJSONLocked(a.CreatorID, false),
		"alert_condition": "rows", "alert_first_only": false, "alert_above_goal": nil,
		"archived": a.Archived, "skip_if_empty": true, "collection_id": nil, "collection_position": nil,
		"dashboard_id": nil, "parameters": []any{}, "created_at": fakeTimestamp, "updated_at": fakeTimestamp,
		"card": map[string]any{
			"id": a.CardID, "name": a.CardName, "description": nil, "collection_id": nil, "display": "table",
			"include_csv": true, "include_xls": false, "dashboard_card_id": nil,
		},
		"channels":  s.pulseChannelsJSONLocked(a.ID, a.UserIDs, a.Emails, a.SlackChannels, a.Archived),
		"can_write": canWrite,
	}
}

// compatAlertJSONLocked renders an alert through GET /api/alert from v0.54
// on: a notification converted to the old pulse shape
// (src/metabase/pulse/api/alert.clj, notification->pulse). Its card has no
// id, and a deactivated user recipient becomes an empty map.
func (s *Server) compatAlertJSONLocked(a *Alert) map[string]any {
	chans := []any{}
	if len(a.UserIDs)+len(a.Emails) > 0 {
		recips := []any{}
		for _, e := range a.Emails {
			recips = append(recips, map[string]any{"email": e})
		}
		for _, id := range a.UserIDs {
			if s.recipientActiveLocked(id) {
				recips = append(recips, s.userRecipientJSONLocked(id))
			} else {
				recips = append(recips, map[string]any{})
			}
		}
		chans = append(chans, map[string]any{
			"id": a.ID*10 + 1, "schedule_type": "daily", "schedule_hour": 9, "schedule_day": nil, "schedule_frame": nil,
			"recipients": recips, "channel_type": "email", "channel_id": nil, "enabled": true,
			"details": map[string]any{"emails": slices.Clone(a.Emails)},
		})
	}
	for i, name := range a.SlackChannels {
		chans = append(chans, map[string]any{
			"id": a.ID*10 + 2 + i, "schedule_type": "daily", "schedule_hour": 9, "schedule_day": nil, "schedule_frame": nil,
			"recipients": []any{}, "channel_type": "slack", "channel_id": nil, "enabled": true,
			"details": map[string]any{"channel": name},
		})
	}
	return map[string]any{
		"id": a.ID, "creator_id": optInt(a.CreatorID), "creator": s.creatorJSONLocked(a.CreatorID, false),
		"created_at": fakeTimestamp, "updated_at": fakeTimestamp, "name": nil,
		"alert_condition": "rows", "alert_above_goal": nil, "alert_first_only": false, "archived": a.Archived,
		"collection_position": nil, "collection_id": nil, "skip_if_empty": true, "parameters": []any{}, "dashboard_id": nil,
		"card": map[string]any{
			"name": a.CardName, "description": nil, "collection_id": nil, "display": "table",
			"format_rows": true, "include_xls": false, "include_csv": true, "pivot_results": false,
			"dashboard_id": nil, "dashboard_card_id": nil, "parameter_mappings": nil,
		},
		"channels": chans,
	}
}

// notificationJSONLocked renders an alert as a hydrated notification
// (src/metabase/notification/db.clj, hydrate-notification: :creator,
// :payload, :subscriptions, [:handlers :channel :template [:recipients
// :recipients-detail]]). A deactivated user recipient keeps its user_id but
// gets "user": null (recipients-detail, GDGT-1927) in EraNotificationAdmin;
// in EraNotification the fake models the earlier hydration,
// [:handlers :channel :template :recipients], whose batched :recipients
// hydrates :user for every user recipient, deactivated ones too
// (src/metabase/notification/models.clj, the version with
// :notification-recipient/external-email). Slack channels and other
// addresses are raw-value recipients with details.value.
func (s *Server) notificationJSONLocked(a *Alert, creatorActive bool) map[string]any {
	handlers := []any{}
	recipient := func(hid, n int, typ string) map[string]any {
		return map[string]any{"id": hid*100 + n, "notification_handler_id": hid, "type": typ,
			"user_id": nil, "permissions_group_id": nil, "details": nil}
	}
	handler := func(hid int, typ string, recips []any) map[string]any {
		return map[string]any{"id": hid, "notification_id": a.ID, "channel_type": typ, "channel_id": nil,
			"template_id": nil, "active": true, "channel": nil, "template": nil, "recipients": recips,
			"created_at": fakeTimestamp, "updated_at": fakeTimestamp}
	}
	if len(a.UserIDs)+len(a.Emails) > 0 {
		hid := a.ID * 10
		recips := []any{}
		for i, id := range a.UserIDs {
			r := recipient(hid, i, "notification-recipient/user")
			r["user_id"] = id
			switch {
			case s.recipientActiveLocked(id):
				r["user"] = s.userRecipientJSONLocked(id)
			case s.notif.era == EraNotification && s.users[id] != nil:
				// Before recipients-detail, :recipients hydrated :user for
				// every user recipient, active or not, with the default
				// columns, which lack is_active.
				r["user"] = s.userRecipientJSONLocked(id)
			default:
				r["user"] = nil
			}
			recips = append(recips, r)
		}
		for i, e := range a.Emails {
			r := recipient(hid, len(a.UserIDs)+i, "notification-recipient/raw-value")
			r["details"] = map[string]any{"value": e}
			recips = append(recips, r)
		}
		handlers = append(handlers, handler(hid, "channel/email", recips))
	}
	for i, name := range a.SlackChannels {
		hid := a.ID*10 + 1 + i
		r := recipient(hid, 0, "notification-recipient/raw-value")
		r["details"] = map[string]any{"value": name}
		handlers = append(handlers, handler(hid, "channel/slack", []any{r}))
	}
	payloadID := a.ID + notificationIDOffset
	return map[string]any{
		"id": a.ID, "active": !a.Archived, "creator_id": optInt(a.CreatorID),
		"creator":      s.creatorJSONLocked(a.CreatorID, creatorActive),
		"payload_type": "notification/card", "payload_id": payloadID,
		"payload": map[string]any{
			"id": payloadID, "card_id": a.CardID, "send_condition": "has_result", "send_once": false,
			"card": map[string]any{"id": a.CardID, "name": a.CardName, "display": "table", "archived": false},
		},
		"subscriptions": []any{map[string]any{"id": a.ID, "notification_id": a.ID, "type": "notification-subscription/cron",
			"cron_schedule": "0 0 9 * * ? *", "event_name": nil, "ui_display_type": "cron/builder"}},
		"handlers":   handlers,
		"created_at": fakeTimestamp, "updated_at": fakeTimestamp,
	}
}

// systemEventJSON is the seeded system-event notification.
func systemEventJSON() map[string]any {
	return map[string]any{
		"id": systemEventNotificationID, "active": true, "creator_id": nil, "creator": nil,
		"payload_type": "notification/system-event", "payload_id": nil, "payload": nil,
		"subscriptions": []any{map[string]any{"type": "notification-subscription/system-event", "event_name": "event/user-invited"}},
		"handlers": []any{map[string]any{"channel_type": "channel/email", "active": true, "recipients": []any{
			map[string]any{"type": "notification-recipient/template", "details": map[string]any{"pattern": "{{payload.event_info.object.email}}"}},
		}}},
		"created_at": fakeTimestamp, "updated_at": fakeTimestamp,
	}
}

func runJSON(r *Run) any {
	if r == nil {
		return nil
	}
	status, errMsg := "successful", any(nil)
	if r.Failed {
		status, errMsg = "failing", r.Error
	}
	return map[string]any{"at": r.At.UTC().Format(timeLayout), "status": status, "error": errMsg}
}
