package metabasetest

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
)

// Metabase translates its error messages: they are built with tru or
// deferred-tru (src/metabase/util/i18n.clj) and rendered in the site's
// locale, or the locale of the user making the request. The last-admin
// refusal (deferred-tru in
// src/metabase/permissions/models/permissions_group_membership.clj), the
// 404 of a route that does not exist (deferred-tru in
// src/metabase/api_routes/routes.clj, read at 00040617) and the reactivate
// 400 (tru in src/metabase/users_rest/api.clj) are all translated;
// metabase/metabase#59776 shows the French last-admin refusal as a
// real instance answered it. A client that decides anything by the English
// text is therefore wrong on every instance that is not in English.

// frenchMessages is the catalogue WithLocale("fr") answers with. The
// last-admin refusal is the one reported in metabase/metabase#59776; the
// others are translations of the fake's own, not copied from Metabase's
// resources, and they only need to be something other than English.
var frenchMessages = map[string]string{
	msgUnauthenticated:                 "Non authentifié",
	msgForbidden:                       "Vous n'avez pas les permissions pour faire ça.",
	msgPublicSharingOff:                "Le partage public n'est pas activé.",
	msgNotFound:                        "Introuvable.",
	msgNoEndpoint:                      "Ce point de terminaison de l'API n'existe pas.",
	msgLastAdmin:                       `Vous ne pouvez pas supprimer le dernier membre du groupe "Admin" !`,
	msgInternalUser:                    "Impossible de modifier l'utilisateur interne",
	msgReactivateActive:                "Impossible de réactiver un utilisateur actif",
	msgMalformedJSON:                   "JSON mal formé dans le corps de la requête.",
	msgServerError:                     "Erreur interne du serveur.",
	msgReactivateTenant:                "Impossible de réactiver un utilisateur d'un locataire désactivé",
	msgTenancyAndTenantID:              "Vous ne pouvez pas indiquer à la fois `tenancy` et `tenant_id`",
	msgAllUsersGroup:                   "Vous ne pouvez pas ajouter ou retirer des utilisateurs du groupe « Tous les utilisateurs ».",
	msgAllTenantUsersGroup:             "Vous ne pouvez pas ajouter ou retirer des utilisateurs du groupe « Tous les utilisateurs des locataires ».",
	msgSuperuserMismatch:               "La valeur de is_superuser doit correspondre à la présence de l'ID du groupe Admin dans group_ids.",
	msgBadGroupPair:                    "Impossible d'ajouter un utilisateur hors locataire à un groupe de locataire, ou l'inverse",
	msgNoMembershipEdit:                "Modification des appartenances aux groupes non autorisée",
	msgCreatorRequired:                 "creator_id est requis pour change-creator",
	msgAlertNotYours:                   "Les utilisateurs non administrateurs ne peuvent modifier que les alertes qu'ils ont créées",
	"did not match stored password":    "ne correspond pas au mot de passe enregistré",
	"Your account is disabled.":        "Votre compte est désactivé.",
	"Too many attempts! You must wait": "Trop de tentatives ! Vous devez attendre",
	"Email address already associated to another user.": "Adresse e-mail déjà associée à un autre utilisateur.",
	"Email address already in use.":                     "Adresse e-mail déjà utilisée.",
}

// WithLocale makes the fake answer its error messages in another language,
// as a Metabase whose site locale is that language does: the statuses and
// the shapes of the bodies stay the same, only the words change. "fr" is
// the only locale it knows; "" or "en" is English (the default). Messages
// injected with FailNext are translated too when the catalogue knows them.
func WithLocale(tag string) Option {
	return func(c *config) { c.locale = tag }
}

// catalogue returns the translations of a locale, nil for English. An
// unknown locale fails the test: a test that asked for one must not pass in
// English by accident.
func (s *Server) catalogue(tag string) map[string]string {
	switch tag {
	case "", "en":
		return nil
	case "fr":
		return frenchMessages
	}
	s.tb.Fatalf("metabasetest: WithLocale(%q): only \"fr\" is known", tag)
	return nil
}

// translatingWriter rewrites the error bodies (status 400 and above) it
// writes, replacing each message of its catalogue by its translation,
// escaped as the body's content type needs.
type translatingWriter struct {
	http.ResponseWriter
	tr     map[string]string
	status int
}

func (t *translatingWriter) WriteHeader(code int) {
	if t.status == 0 {
		t.status = code
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *translatingWriter) Write(b []byte) (int, error) {
	if t.status < http.StatusBadRequest {
		return t.ResponseWriter.Write(b)
	}
	mediaType, _, _ := mime.ParseMediaType(t.Header().Get("Content-Type"))
	isJSON := mediaType == "application/json"
	s := string(b)
	for en, fr := range t.tr {
		if isJSON {
			en, fr = jsonEscaped(en), jsonEscaped(fr)
		}
		s = strings.ReplaceAll(s, en, fr)
	}
	if _, err := t.ResponseWriter.Write([]byte(s)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// jsonEscaped is s as it appears inside a JSON string written by
// encoding/json.
func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// Words returns msg as the fake answers it in locale: the translation when
// the catalogue has one, else msg. Tests use it to expect Metabase's own
// words, which the bot shows as Metabase sent them.
func Words(locale, msg string) string {
	if locale == "fr" {
		if fr, ok := frenchMessages[msg]; ok {
			return fr
		}
	}
	return msg
}
