;;; gpt-ls.el --- OpenAI chat models in Emacs through the gpt-ls language server -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9"))
;; Keywords: tools, convenience
;; URL: https://github.com/gpt-ls/gpt-ls
;; SPDX-License-Identifier: MIT

;;; Commentary:

;; Registers the gpt-ls language server with eglot and adds commands for its actions:
;;
;;   M-x gpt-ls-ask            the region is the question; the reply streams in below it
;;   M-x gpt-ls-explain        explanation of the region, shown and kept as hover (eldoc)
;;   M-x gpt-ls-draft-email    the region's notes become a complete e-mail below them
;;   M-x gpt-ls-continue       follow-up in the current conversation
;;   M-x gpt-ls-new-conversation, gpt-ls-show-history, gpt-ls-check, gpt-ls-cancel
;;   M-x gpt-ls-toggle-completions   completions as you type on or off (`gpt-ls-completions')
;;
;; The same actions are offered by `eglot-code-actions' (titles "GPT: Ask", ...).
;; With completions on, the model's suggestion for the text at point is a completion
;; candidate of eglot's `completion-at-point' (C-M-i; as you type with company or corfu).
;; Settings go to the server as initializationOptions (`gpt-ls-settings') and as the
;; `gpt-ls' section of `eglot-workspace-configuration'.

;;; Code:

(require 'cl-lib)
(require 'eglot)
(require 'jsonrpc)

(defgroup gpt-ls nil
  "OpenAI chat models through the gpt-ls language server."
  :group 'tools
  :prefix "gpt-ls-")

(defcustom gpt-ls-command '("gpt-ls")
  "The server command and its arguments, e.g. (\"python3\" \"-m\" \"gpt_ls\")."
  :type '(repeat string))

(defcustom gpt-ls-modes '(text-mode markdown-mode gfm-mode org-mode)
  "Major modes in which `eglot' starts gpt-ls.
Eglot runs one server per buffer, so list the modes where no other
language server is wanted; elsewhere use \\[universal-argument] \\[eglot]."
  :type '(repeat symbol))

(defcustom gpt-ls-settings nil
  "gpt-ls settings: a plist with camelCase keys, e.g. (:model \"gpt-4.1\").
Sent as initializationOptions; nil means the server's defaults and
its config files."
  :type 'plist)

(defcustom gpt-ls-completions nil
  "Completions as you type: the model suggests the text at point.
t turns them on, `off' turns them off, nil leaves it to gpt-ls's config
files (off unless they say otherwise).  Every suggestion is a request
that costs tokens.  Change it with \[gpt-ls-toggle-completions], which
also tells running servers."
  :type '(choice (const :tag "As gpt-ls's config files say (off by default)" nil)
                 (const :tag "On" t)
                 (const :tag "Off" off)))

;; A repository's local variables must not turn on requests that cost the user tokens.
(put 'gpt-ls-completions 'risky-local-variable t)

(defcustom gpt-ls-request-timeout 600
  "Seconds to wait for a command's answer.
Explain answers only when the whole reply is in."
  :type 'number)

;; Settings a repository must not choose: they decide where requests go, which
;; credentials, headers and programs are used and what is deleted.  The same list as the
;; server's `RESTRICTED_FIELDS' (tests/e2e/test_emacs.py checks it).
(defconst gpt-ls-restricted-settings
  '(apiKey apiKeyCommand apiKeyCommandTimeout baseUrl organization project headers
    azureEndpoint azureApiVersion azureDeployment proxy
    history historyRetentionDays historyMaxConversations embeddingModel completions)
  "gpt-ls settings that directory- or file-local variables cannot set unasked.")

(defcustom gpt-ls-allowed-local-settings nil
  "Directories whose local `eglot-workspace-configuration' may set restricted keys.
Each element is (DIRECTORY . SHA256) of the restricted settings allowed
there; a changed value is ignored until allowed again with
\[gpt-ls-allow-local-settings].  See `gpt-ls-restricted-settings'."
  :type '(alist :key-type directory :value-type string))

(defvar gpt-ls-status nil
  "The last `gpt-ls/status' notification as a plist (:running :tokens :message).")

(defvar gpt-ls-last-result nil
  "The result of the last gpt-ls command, for programs and tests.")

(defclass gpt-ls-server (eglot-lsp-server) ()
  :documentation "An eglot connection to gpt-ls.")

(defun gpt-ls--own-settings ()
  "`gpt-ls-settings' with `gpt-ls-completions' when that is set: the user's own settings."
  (if (null gpt-ls-completions)
      gpt-ls-settings
    (append (list :completions (if (eq gpt-ls-completions t) t :json-false))
            (cl-loop for (k v) on gpt-ls-settings by #'cddr
                     unless (eq k :completions) collect k and collect v))))

(cl-defmethod eglot-initialization-options ((_server gpt-ls-server))
  "Send `gpt-ls-settings' and `gpt-ls-completions' (an empty object when unset)."
  (or (gpt-ls--own-settings) (make-hash-table)))

;; The repository's word on restricted settings is checked in
;; `eglot--workspace-configuration-plist', which both `workspace/configuration' answers and
;; `workspace/didChangeConfiguration' use.

(defun gpt-ls--restricted-key-p (key)
  "Non-nil when KEY (keyword, symbol or string) names a restricted setting."
  (let ((name (if (symbolp key) (string-remove-prefix ":" (symbol-name key)) (format "%s" key))))
    (memq (intern name) gpt-ls-restricted-settings)))

(defun gpt-ls--split-settings (settings)
  "Split SETTINGS (a plist, or an alist) into (OPEN . RESTRICTED) of the same shape."
  (let (open restricted)
    (if (consp (car-safe settings))
        (dolist (cell settings)
          (if (gpt-ls--restricted-key-p (car cell)) (push cell restricted) (push cell open)))
      (cl-loop for (k v) on settings by #'cddr
               do (if (gpt-ls--restricted-key-p k)
                      (setq restricted (cons v (cons k restricted)))
                    (setq open (cons v (cons k open))))))
    (cons (nreverse open) (nreverse restricted))))

(defun gpt-ls--local-configuration-p ()
  "Non-nil when this buffer's `eglot-workspace-configuration' came from a repository.
That is, from a .dir-locals.el file or a file's local variables, which
Emacs applies without asking because eglot declares the variable safe."
  (and (local-variable-p 'eglot-workspace-configuration)
       (or (assq 'eglot-workspace-configuration (bound-and-true-p dir-local-variables-alist))
           (assq 'eglot-workspace-configuration (bound-and-true-p file-local-variables-alist)))))

(defun gpt-ls--local-directory (server)
  "The directory whose local variables configure SERVER: its project root."
  (file-name-as-directory (expand-file-name (project-root (eglot--project server)))))

(defun gpt-ls--restricted-part (config)
  "CONFIG split into (OPEN-CONFIG . RESTRICTED): top level and the `:gpt-ls' section.
Both levels count: the server also reads a flat object of settings."
  (let* ((section (plist-get config :gpt-ls))
         (outer (gpt-ls--split-settings (cl-loop for (k v) on config by #'cddr
                                                 unless (eq k :gpt-ls) collect k and collect v)))
         (inner (and (listp section) (gpt-ls--split-settings section))))
    (cons (append (car outer) (and section (list :gpt-ls (car inner))))
          (append (cdr outer) (cdr inner)))))

(defun gpt-ls--key-names (restricted)
  "The names of the keys in RESTRICTED (a plist or an alist), comma-separated."
  (mapconcat #'identity
             (delete-dups
              (mapcar (lambda (k) (string-remove-prefix ":" (format "%s" k)))
                      (if (consp (car-safe restricted)) (mapcar #'car restricted)
                        (cl-loop for (k _v) on restricted by #'cddr collect k))))
             ", "))

(defvar gpt-ls--told nil
  "(DIRECTORY . SHA256) pairs already reported as ignored: each is said once.")

(defvar gpt-ls--unfiltered nil
  "Non-nil while `gpt-ls-allow-local-settings' reads the local value as it is.")

(defun gpt-ls--filter-configuration (server config)
  "CONFIG without the restricted keys, unless SERVER's directory allowed exactly these."
  (pcase-let* ((`(,open . ,restricted) (gpt-ls--restricted-part config))
               (dir (gpt-ls--local-directory server))
               (digest (secure-hash 'sha256 (prin1-to-string restricted))))
    (cond
     ((or (null restricted) gpt-ls--unfiltered) config)
     ((equal (cdr (assoc dir gpt-ls-allowed-local-settings)) digest) config)
     (t
      (unless (member (cons dir digest) gpt-ls--told)
        (push (cons dir digest) gpt-ls--told)
        (message "gpt-ls: ignored %s from the local variables of %s: they choose endpoints, credentials and programs; M-x gpt-ls-allow-local-settings to use them"
                 (gpt-ls--key-names restricted) dir))
      open))))

(defun gpt-ls--with-completions (config)
  "CONFIG with `gpt-ls-completions' in its `:gpt-ls' section, when that is set.
Without a section, the section is the user's own settings: the server
takes each section as the editor's whole configuration."
  (if (null gpt-ls-completions)
      config
    (let ((section (plist-get config :gpt-ls))
          (value (if (eq gpt-ls-completions t) t :json-false)))
      (plist-put (copy-sequence config) :gpt-ls
                 (if (and section (listp section))
                     (plist-put (copy-sequence section) :completions value)
                   (gpt-ls--own-settings))))))

(defun gpt-ls--configuration-advice (orig server &rest args)
  "Around `eglot--workspace-configuration-plist': a repository sets no restricted keys.
For gpt-ls servers, when the value comes from local variables; a
function there is not even called (it would run the repository's code).
The user's `gpt-ls-completions' is added to what gpt-ls servers get."
  (cond
   ((not (cl-typep server 'gpt-ls-server))
    (apply orig server args))
   ((not (gpt-ls--local-configuration-p))
    (gpt-ls--with-completions (apply orig server args)))
   ((functionp eglot-workspace-configuration)
    (message "gpt-ls: ignored a function in eglot-workspace-configuration from the local variables of %s"
             (gpt-ls--local-directory server))
    (gpt-ls--with-completions nil))
   (t (gpt-ls--with-completions (gpt-ls--filter-configuration server (apply orig server args))))))

(advice-add 'eglot--workspace-configuration-plist :around #'gpt-ls--configuration-advice)

(defun gpt-ls-allow-local-settings ()
  "After asking, let this project's local variables set gpt-ls's restricted settings.
The value allowed is remembered by its SHA-256 in
`gpt-ls-allowed-local-settings'; a changed value is ignored until allowed anew."
  (interactive)
  (let* ((server (gpt-ls--server))
         (restricted (cdr (gpt-ls--restricted-part
                           (let ((gpt-ls--unfiltered t))
                             (eglot--workspace-configuration-plist server)))))
         (dir (gpt-ls--local-directory server)))
    (cond
     ((null restricted)
      (message "gpt-ls: the local variables of %s set no restricted settings" dir))
     ((yes-or-no-p (format "gpt-ls: let the local variables of %s set %s (endpoints, credentials, programs): %S? "
                           dir (gpt-ls--key-names restricted) restricted))
      (let ((allowed (cons (cons dir (secure-hash 'sha256 (prin1-to-string restricted)))
                           (cl-remove dir gpt-ls-allowed-local-settings :key #'car :test #'equal))))
        (condition-case err
            (customize-save-variable 'gpt-ls-allowed-local-settings allowed)
          (error (setq gpt-ls-allowed-local-settings allowed)
                 (message "gpt-ls: allowed for this session only (not saved: %s)"
                          (error-message-string err)))))
      (eglot-signal-didChangeConfiguration server)))))

(cl-defmethod eglot-client-capabilities ((_server gpt-ls-server))
  "Eglot's capabilities plus work-done progress and showDocument, which this package handles."
  (let* ((caps (copy-tree (cl-call-next-method)))
         (window (copy-sequence (plist-get caps :window))))
    (setq window (plist-put window :workDoneProgress t))
    (setq window (plist-put window :showDocument (list :support t)))
    (plist-put caps :window window)))

(cl-defmethod eglot-handle-request
  ((_server gpt-ls-server) (_method (eql workspace/applyEdit)) &rest _)
  "Apply gpt-ls's edits without eglot's messages for each one.
A streamed reply arrives as many small edits, and eglot echoes and logs
three lines for every edit (\"applying 1 edits...\", \"...done\",
\"Edit successful!\").  A failed edit signals an error, which is not a
message: the server hears of it and reports it itself.  With
`eglot-confirm-server-initiated-edits' set, eglot's prompt stays as it is."
  (if eglot-confirm-server-initiated-edits
      (cl-call-next-method)
    (let ((inhibit-message t)
          (message-log-max nil))
      (cl-call-next-method))))

(defun gpt-ls--visit (path)
  "A buffer visiting PATH, reread silently if gpt-ls rewrote the file."
  (let ((buf (find-buffer-visiting path)))
    (when (and buf (not (buffer-modified-p buf))
               (not (verify-visited-file-modtime buf)))
      (with-current-buffer buf (revert-buffer t t t))))
  (find-file-noselect path))

(cl-defmethod eglot-handle-request
  ((_server gpt-ls-server) (_method (eql window/showDocument)) &key uri takeFocus
   &allow-other-keys)
  "Open a document gpt-ls wrote (history, a conversation, a reply), once.
Eglot before 1.13 cannot; without it the server would show the whole
document as a message."
  (let ((buf (gpt-ls--visit (eglot--uri-to-path uri))))
    (if (eq takeFocus t) (pop-to-buffer buf) (display-buffer buf))
    (list :success t)))

(defconst gpt-ls-report-buffer "*gpt-ls report*"
  "The buffer that shows the server's messages of more than one line.")

(cl-defmethod eglot-handle-notification
  ((_server gpt-ls-server) (_method (eql window/showMessage)) &key type message)
  "Show a one-line MESSAGE as eglot does; a longer one once, in a buffer.
The report of `gpt-ls-check' is forty lines: the echo area gets its first
line (the verdict) and the name of `gpt-ls-report-buffer', which shows it all."
  (if (not (string-match-p "\n" message))
      (cl-call-next-method)
    (with-current-buffer (get-buffer-create gpt-ls-report-buffer)
      (let ((inhibit-read-only t))
        (erase-buffer)
        (insert message)
        (goto-char (point-min))
        (special-mode)))
    (display-buffer gpt-ls-report-buffer)
    (message "%s" (propertize (format "gpt-ls: %s (all of it in %s)"
                                      (car (split-string message "\n")) gpt-ls-report-buffer)
                              'face (if (<= type 1) 'error 'default)))))

(cl-defmethod eglot-handle-request
  ((_server gpt-ls-server) (_method (eql window/workDoneProgress/create)) &key _token)
  "Accept progress tokens; `$/progress' reports arrive as notifications."
  nil)

(defvar gpt-ls--progress-titles (make-hash-table :test #'equal)
  "Progress token -> the title its `begin' report carried.")

(cl-defmethod eglot-handle-notification
  ((_server gpt-ls-server) (_method (eql $/progress)) &key token value)
  "Echo gpt-ls progress (\"gpt-ls: Ask  120 tokens\") in the echo area."
  (let* ((kind (plist-get value :kind))
         (msg (plist-get value :message))
         (title (or (plist-get value :title) (gethash token gpt-ls--progress-titles) "gpt-ls")))
    (if (equal kind "end")
        (remhash token gpt-ls--progress-titles)
      (puthash token title gpt-ls--progress-titles))
    (message "%s" (string-trim
                   (if (equal kind "end")
                       (format "%s: %s" title (or msg "done"))
                     (format "%s %s" title (or msg "")))))))

(cl-defmethod eglot-handle-notification
  ((_server gpt-ls-server) (_method (eql gpt-ls/status)) &rest params)
  "Keep the running/tokens status for the mode line."
  (setq gpt-ls-status params)
  (force-mode-line-update t))

(defun gpt-ls-mode-line ()
  "Mode-line text: empty when idle, else e.g. \"GPT[1 120tok]\"."
  (let ((running (or (plist-get gpt-ls-status :running) 0)))
    (if (and (numberp running) (> running 0))
        (format "GPT[%d %dtok]" running (or (plist-get gpt-ls-status :tokens) 0))
      "")))

(defun gpt-ls--contact (&optional _interactive)
  "Eglot contact: the `gpt-ls-server' class and `gpt-ls-command' as it is now."
  (cons 'gpt-ls-server gpt-ls-command))

;;;###autoload
(defun gpt-ls-register ()
  "Put gpt-ls first in `eglot-server-programs' for `gpt-ls-modes'."
  (setq eglot-server-programs
        (cons (cons gpt-ls-modes #'gpt-ls--contact)
              (cl-remove #'gpt-ls--contact eglot-server-programs :key #'cdr))))

;;;###autoload
(defun gpt-ls-start ()
  "Start gpt-ls through eglot for this buffer's major mode, whatever the mode.
For modes outside `gpt-ls-modes', e.g. code whose own language server you
do not run in Emacs."
  (interactive)
  (let ((eglot-server-programs (list (cons (list major-mode) #'gpt-ls--contact))))
    (call-interactively #'eglot)))

(defun gpt-ls--server ()
  "The gpt-ls server managing this buffer, or a `user-error' saying what to do."
  (let ((server (eglot-current-server)))
    (unless (cl-typep server 'gpt-ls-server)
      (user-error "gpt-ls is not managing this buffer: M-x eglot or M-x gpt-ls-start"))
    server))

(defun gpt-ls--bounds ()
  "The active region's bounds, or the current line's."
  (if (use-region-p)
      (list (region-beginning) (region-end))
    (list (line-beginning-position) (line-end-position))))

(defun gpt-ls--range (beg end)
  "LSP range of BEG..END (UTF-16, as eglot uses)."
  (list :start (eglot--pos-to-lsp-position beg)
        :end (eglot--pos-to-lsp-position end)))

(defun gpt-ls--show (result)
  "Show a command's RESULT: Markdown text in a buffer, a message as a message."
  (setq gpt-ls-last-result result)
  (cond
   ((stringp result)
    (with-current-buffer (get-buffer-create "*gpt-ls*")
      (let ((inhibit-read-only t))
        (erase-buffer)
        (insert result)
        (goto-char (point-min))
        (if (fboundp 'gfm-view-mode) (gfm-view-mode) (special-mode)))
      (display-buffer (current-buffer))))
   ((and (listp result) (plist-get result :uri))
    ;; A document the server wrote (history): its window/showDocument opened it already.
    (let ((buf (gpt-ls--visit (eglot--uri-to-path (plist-get result :uri)))))
      (unless (get-buffer-window buf t)
        (display-buffer buf))))
   ((and (listp result) (plist-get result :message))
    (message "gpt-ls: %s" (plist-get result :message)))))

(defun gpt-ls-execute (command arguments &optional on-result)
  "Run server COMMAND (a string) with ARGUMENTS (a list) without blocking Emacs.
ON-RESULT is called with the result; errors are shown as messages."
  (let ((server (gpt-ls--server)))
    ;; Eglot sends didChange after an idle delay: flush it so the server sees this text.
    (when (fboundp 'eglot--signal-textDocument/didChange)
      (eglot--signal-textDocument/didChange))
    (jsonrpc-async-request
     server :workspace/executeCommand
     (list :command command :arguments (vconcat arguments))
     :timeout gpt-ls-request-timeout
     :success-fn (lambda (result)
                   (setq gpt-ls-last-result result)
                   (when on-result (funcall on-result result)))
     :error-fn (lambda (err)
                 (message "gpt-ls: %s" (or (plist-get err :message) err))))))

(defun gpt-ls--on-result (command result)
  "Show RESULT of server COMMAND the way its interactive command does.
A reply whose output is a hover (Explain, Summarize, user actions with
output \"hover\") shows in *gpt-ls*; a server that names no output
shows Explain's there."
  (cond
   ((if (and (listp result) (plist-member result :output))
        (equal (plist-get result :output) "hover")
      (equal command "gpt-ls.explain"))
    (gpt-ls--show-explanation result))
   ((member command '("gpt-ls.showHistory" "gpt-ls.openConversation"))
    (gpt-ls--show result))
   (t (setq gpt-ls-last-result result))))

(cl-defmethod eglot-execute-command ((_server gpt-ls-server) command arguments)
  "Run gpt-ls COMMAND with ARGUMENTS without blocking.
This also serves `eglot-code-actions'.  Eglot's default waits with
`jsonrpc-request', which in Emacs 28's jsonrpc leaves server requests
that arrive with the answer unread until more output comes; the
server's progress then stalls for seconds."
  (let ((name (format "%s" command)))
    (gpt-ls-execute name (append arguments nil)
                    (lambda (result) (gpt-ls--on-result name result)))))

(defun gpt-ls--action (command beg end &optional on-result)
  "Run action COMMAND on BEG..END of the current buffer."
  (gpt-ls-execute command
                  (list (plist-get (eglot--TextDocumentIdentifier) :uri)
                        (gpt-ls--range beg end))
                  on-result))

;;;###autoload
(defun gpt-ls-ask (beg end)
  "Ask the model the text between BEG and END; the reply streams in below it."
  (interactive (gpt-ls--bounds))
  (gpt-ls--action "gpt-ls.ask" beg end))

;;;###autoload
(defun gpt-ls-explain (beg end)
  "Explain the text between BEG and END; also the hover there afterwards."
  (interactive (gpt-ls--bounds))
  (gpt-ls--action "gpt-ls.explain" beg end
                  (lambda (result) (gpt-ls--on-result "gpt-ls.explain" result))))

(defun gpt-ls--show-explanation (result)
  "Show Explain's RESULT (Markdown text, or a hover-like object)."
  (gpt-ls--show (cond ((stringp result) result)
                      ((plist-get result :text))
                      ((plist-get result :value))
                      ((plist-get (plist-get result :contents) :value))
                      (t result))))

;;;###autoload
(defun gpt-ls-draft-email (beg end)
  "Turn the notes between BEG and END into a complete e-mail below them."
  (interactive (gpt-ls--bounds))
  (gpt-ls--action "gpt-ls.draftEmail" beg end))

;;;###autoload
(defun gpt-ls-continue (beg end)
  "Send the text between BEG and END as a follow-up in the current conversation."
  (interactive (gpt-ls--bounds))
  (gpt-ls--action "gpt-ls.continue" beg end))

;;;###autoload
(defun gpt-ls-new-conversation ()
  "Start a fresh conversation for this workspace."
  (interactive)
  ;; The server confirms with a message of its own.
  (gpt-ls-execute "gpt-ls.newConversation"
                  (list (plist-get (eglot--TextDocumentIdentifier) :uri))))

;;;###autoload
(defun gpt-ls-show-history ()
  "Show recent conversations."
  (interactive)
  (gpt-ls-execute "gpt-ls.showHistory" nil #'gpt-ls--show))

;;;###autoload
(defun gpt-ls-check ()
  "Test the connection to the API and report the result."
  (interactive)
  ;; The server shows its report (settings in effect, latency) as a message itself.
  (gpt-ls-execute "gpt-ls.check" nil))

;;;###autoload
(defun gpt-ls-cancel ()
  "Cancel every running gpt-ls request; text already inserted stays."
  (interactive)
  (gpt-ls-execute "gpt-ls.cancel" nil))

;;;###autoload
(defun gpt-ls-toggle-completions (&optional arg)
  "Turn completions as you type on or off; with ARG, on when it is positive.
Sets `gpt-ls-completions' for this session and sends it to every running
gpt-ls server (workspace/didChangeConfiguration)."
  (interactive "P")
  (let ((on (if arg (> (prefix-numeric-value arg) 0) (not (eq gpt-ls-completions t)))))
    (setq gpt-ls-completions (if on t 'off))
    (dolist (server (gpt-ls--servers))
      (eglot-signal-didChangeConfiguration server))
    (message "gpt-ls: completions as you type %s"
             (if on "on (each suggestion is a request that costs tokens)" "off"))))

(defun gpt-ls--servers ()
  "Every running gpt-ls server."
  (cl-loop for servers being the hash-values of eglot--servers-by-project
           append (cl-remove-if-not (lambda (s) (cl-typep s 'gpt-ls-server)) servers)))

;;;###autoload
(with-eval-after-load 'eglot (gpt-ls-register))

(provide 'gpt-ls)
;;; gpt-ls.el ends here
