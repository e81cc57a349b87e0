package bot

// Scope is a bot token scope the bot needs, and what for.
type Scope struct{ Name, Why string }

// RequiredScopes are the bot token scopes behind the Web API calls the bot makes, each from its
// method's page (docs/slack.md#scopes). slack-app-manifest.yaml grants them, and
// `metabase-bot check` compares them with the scopes a token has.
var RequiredScopes = []Scope{
	{"commands", "the slash command"},
	{"chat:write", "cards, thread replies, audit lines and private replies"},
	{"usergroups:read", "reading APPROVER_GROUP, REQUESTER_GROUP and INCIDENT_GROUP"},
	{"users:read", "looking up a mentioned user"},
	{"users:read.email", "a mentioned user's email, to find their Metabase account"},
	{"channels:read", "checking that the bot is in AUDIT_CHANNEL and ALLOWED_CHANNELS when they are public"},
	{"groups:read", "the same check for private channels"},
}

// DeactivationScope is the scope Slack requires for the user_change event
// (https://api.slack.com/events/user_change), which tells the bot of deactivated accounts.
const DeactivationScope = "users:read"
